//! Step 5, resolve: the registry side of a run. One async runtime and one registry client
//! for every request it makes, the local result cache in front of it, and a progress bar.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Error;
use crate::settings::{Settings, Verbosity};
use crate::{cache, check, image_ref, resolve};

/// The registry side of a run: one runtime and one client for every request it makes.
pub struct Online {
    runtime: tokio::runtime::Runtime,
    client: resolve::Client,
    verbosity: Verbosity,
    cache: std::sync::Mutex<Option<cache::Cache>>,
}

impl Online {
    pub fn new(settings: &Settings) -> Result<Online, Error> {
        // One thread: the requests are I/O, and on a multi-threaded runtime every answer read
        // by a worker woke the task polling the request on another thread (a profile of
        // 11,000 requests on 2 cores: 40% of imagegate's CPU in the kernel's context switches;
        // one thread cut its CPU by a quarter). CPU-heavy steps (chart archives, YAML) run
        // outside the runtime; blocking calls (credential helpers) go to its blocking pool.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let opts = resolve::Options {
            concurrency: settings.concurrency,
            per_registry: settings.registry_concurrency,
            timeout: settings.timeout,
            deadline: tokio::time::Instant::now() + settings.deadline,
            deadline_secs: settings.deadline.as_secs(),
            registries: settings.registries.clone(),
        };
        let client = resolve::Client::new(opts).map_err(Error::Registries)?;
        Ok(Online {
            runtime,
            client,
            verbosity: settings.verbosity,
            cache: std::sync::Mutex::new(settings.cache.and_then(cache::Cache::open)),
        })
    }

    /// The registry client, for the chart step.
    pub fn client(&self) -> &resolve::Client {
        &self.client
    }

    /// Runs a future of the chart step on the run's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Resolves references, with a progress bar for the main pass.
    pub fn resolve(
        &self,
        refs: Vec<image_ref::ImageRef>,
        progress: bool,
    ) -> HashMap<image_ref::ImageRef, resolve::Resolution> {
        // Answers the cache still trusts are not asked again.
        let mut known = HashMap::new();
        let mut ask = Vec::with_capacity(refs.len());
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for r in refs {
                match cache
                    .as_ref()
                    .and_then(|c| c.get(&r, &self.client.route_key(&r)))
                {
                    Some(found) => {
                        known.insert(r, resolve::Resolution::Found(found));
                    }
                    None => ask.push(r),
                }
            }
        }
        if !known.is_empty() {
            log::debug!(
                "{} answers from the cache ({})",
                known.len(),
                cache::dir().map_or_else(String::new, |d| d.display().to_string())
            );
        }
        let total = ask.len() as u64;
        let wanted = progress && self.verbosity != Verbosity::Quiet;
        let map = self.runtime.block_on(async {
            let bar = progress_bar(total, wanted);
            let tick = || bar.inc(1);
            let map = resolve::resolve_all(&self.client, ask, &tick).await;
            bar.finish_and_clear();
            map
        });
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            for (r, res) in &map {
                if let resolve::Resolution::Found(found) = res {
                    c.put(r, &self.client.route_key(r), found);
                }
            }
        }
        known.extend(map);
        known
    }

    /// Tag lists of repositories (at most five pages each); refusals just give nothing.
    pub fn tag_lists(&self, repos: Vec<image_ref::ImageRef>) -> check::TagLists {
        use futures::StreamExt;
        let concurrency = self.client.options().concurrency.max(1);
        self.runtime.block_on(async {
            futures::stream::iter(repos)
                .map(|r| async move {
                    let listed = self.client.tags(&r, 5).await;
                    ((r.domain.clone(), r.path.clone()), listed)
                })
                .buffer_unordered(concurrency)
                .filter_map(|(key, listed)| async move { listed.ok().map(|l| (key, l)) })
                .collect()
                .await
        })
    }

    /// The platforms of images that exist, for the platform policy.
    pub fn platforms(
        &self,
        refs: Vec<(image_ref::ImageRef, Option<String>)>,
    ) -> HashMap<image_ref::ImageRef, Result<Vec<String>, String>> {
        use futures::StreamExt;
        let concurrency = self.client.options().concurrency.max(1);
        self.runtime.block_on(async {
            futures::stream::iter(refs)
                .map(|(r, via)| async move {
                    let listed =
                        self.client
                            .platforms(&r, via.as_deref())
                            .await
                            .map_err(|e| match e {
                                resolve::Resolution::NotFound => "the manifest is gone".to_string(),
                                e => e.detail(),
                            });
                    (r, listed)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await
        })
    }

    /// Request counts, printed in verbose mode.
    pub fn finish(&self) -> resolve::RequestCounts {
        if let Some(c) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.save();
        }
        let counts = self.client.counts();
        log::debug!(
            "{} registry pings, {} token requests, {} manifest HEADs, {} tag lists, {} manifest GETs, {} retries",
            counts.pings,
            counts.tokens,
            counts.heads,
            counts.tag_lists,
            counts.gets,
            counts.retries
        );
        for (host, remaining) in self.client.rate_limits() {
            log::debug!("{host} ratelimit-remaining: {remaining}");
        }
        counts
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal and the run is long.
fn progress_bar(total: u64, wanted: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if wanted && std::io::stderr().is_terminal() {
        let shown = bar.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.set_message("checking references");
            }
        });
    }
    bar
}
