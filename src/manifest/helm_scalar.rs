//! What Helm renders for a plain scalar in its values. Helm reads values with
//! sigs.k8s.io/yaml: go-yaml v2 types the scalar by YAML 1.1's rules, the tree goes through JSON,
//! so every number becomes a float64, and a template prints it with Go's `%v`. `tag: 0.1`
//! renders as written; `tag: 1.10` renders `1.1`, `2.0` renders `2` and `1234567` renders
//! `1.234567e+06`, so an image tag written as a number is a hazard only where the two differ.

/// How Helm reads a plain scalar of its values, and what a template prints for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelmScalar {
    /// A string: printed as written.
    Text,
    /// A number or boolean, and the text a template prints for it.
    Typed(String),
    /// A value Helm cannot carry through JSON (`.inf`, `.nan`): the chart does not render.
    Unrenderable,
}

/// Reads a plain scalar as go-yaml v2's `resolve` does (resolve.go), then prints it as Helm
/// does. Quoted scalars are strings and never come here.
pub fn read(plain: &str) -> HelmScalar {
    match plain {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return HelmScalar::Typed("true".into());
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return HelmScalar::Typed("false".into());
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return HelmScalar::Unrenderable,
        _ => {}
    }
    let number = match plain.as_bytes().first() {
        Some(b'.') => plain.parse::<f64>().ok(),
        Some(b'0'..=b'9' | b'+' | b'-') => {
            let digits = plain.replace('_', "");
            parse_int(&digits).or_else(|| float(&digits))
        }
        _ => None,
    };
    match number {
        Some(n) if n.is_finite() => HelmScalar::Typed(go_print(n)),
        _ => HelmScalar::Text,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: a sign, then `0x`, `0o`, `0b` or a
/// leading `0` (octal) picks the base. The value as the float64 JSON makes of it.
fn parse_int(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        // ParseInt's range; ParseUint takes no sign.
        (magnitude <= 1 << 63).then(|| -(magnitude as f64))
    } else {
        Some(magnitude as f64)
    }
}

/// go-yaml v2's `yamlStyleFloat`, `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, read
/// by `ParseFloat` (which refuses what overflows).
fn float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", b)) => !b.is_empty() && digits(b),
        Some((a, b)) => digits(a) && digits(b),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, the shortest digits that
/// read back as `f`, in `%e` form when the exponent is below -4 or at least 6 (`1e+06`).
fn go_print(f: f64) -> String {
    // Rust's `{:e}` gives the same shortest digits: `1.234567e6`, `1e-5`, `0e0`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{esign}{:02}", exponent.abs());
    }
    let text = if exponent < 0 {
        format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    } else {
        let whole = exponent as usize + 1;
        if digits.len() <= whole {
            format!("{digits}{}", "0".repeat(whole - digits.len()))
        } else {
            format!("{}.{}", &digits[..whole], &digits[whole..])
        }
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> String {
        match read(s) {
            HelmScalar::Text => format!("text {s}"),
            HelmScalar::Typed(t) => t,
            HelmScalar::Unrenderable => "unrenderable".into(),
        }
    }

    // What Go prints (`fmt.Sprint(float64)` after go-yaml v2 and encoding/json), checked
    // against real helm in tests/cli/real_repos.rs.
    #[test]
    fn numbers_print_as_go_prints_a_float64() {
        for (written, printed) in [
            ("0.1", "0.1"),
            ("1.10", "1.1"),
            ("2.0", "2"),
            ("7", "7"),
            ("123456", "123456"),
            ("1234567", "1.234567e+06"),
            ("1000000", "1e+06"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1e3", "1000"),
            ("010", "8"),
            ("08", "8"),
            ("0x1F", "31"),
            ("0o17", "15"),
            ("0b101", "5"),
            ("1_000", "1000"),
            ("-3", "-3"),
            ("+2.50", "2.5"),
            (".5", "0.5"),
            ("18446744073709551615", "1.8446744073709552e+19"),
            ("yes", "true"),
            ("n", "false"),
            ("1.2.3", "text 1.2.3"),
            ("v1.10", "text v1.10"),
            ("1e400", "text 1e400"),
            ("2024-01-02", "text 2024-01-02"),
            (".inf", "unrenderable"),
        ] {
            assert_eq!(shown(written), printed, "{written}");
        }
    }
}
