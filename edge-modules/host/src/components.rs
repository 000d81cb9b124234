//! The component runtime: one engine, one `InstancePre` per job, a fresh or
//! bounded-reuse store per call.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolConcurrencyLimitError,
    PoolingAllocationConfig, Store, Trap,
};

use crate::bindings::exports::livestack::edge::{manifest, routing, signaling, tokens};
use crate::bindings::livestack::edge as host_interfaces;
use crate::imports::HostImports;
use crate::kv::Kv;
use crate::state::{HostState, LimitExceeded};
use crate::ticker::EpochTicker;
use crate::{
    ClientGeo, ComponentError, ComponentLimits, Job, ManifestError, MintRequest, RewriteOptions,
    Route, RoutingError, SignalingRequest, SignalingResponse, TokenError, Verified,
};

/// Components built with this crate, embedded as the defaults.
const EMBEDDED: [&[u8]; 4] = [
    include_bytes!(env!("LIVESTACK_COMPONENT_TOKENS")),
    include_bytes!(env!("LIVESTACK_COMPONENT_MANIFEST")),
    include_bytes!(env!("LIVESTACK_COMPONENT_ROUTING")),
    include_bytes!(env!("LIVESTACK_COMPONENT_SIGNALING")),
];

fn index(job: Job) -> usize {
    match job {
        Job::Tokens => 0,
        Job::Manifest => 1,
        Job::Routing => 2,
        Job::Signaling => 3,
    }
}

/// One job's loaded component: pre-linked, export indices resolved.
struct Loaded<I> {
    pre: InstancePre<HostState>,
    indices: I,
    /// Calls one instance may answer: [`ComponentLimits::max_instance_reuse`]
    /// for the embedded default,
    /// [`ComponentLimits::max_module_instance_reuse`] for a file; 1 = a
    /// fresh instance per call.
    max_reuse: u32,
    /// Instances kept for reuse (`max_reuse` above 1), newest last.
    idle: Mutex<Vec<Warm>>,
}

/// An instance that answered a call successfully and may take another.
struct Warm {
    store: Store<HostState>,
    instance: Instance,
    /// Calls it has answered.
    uses: u32,
    /// [`Runtime::generation`] when its store was made.
    generation: u64,
}

/// The set of components calls run against; swapped whole on reload.
struct Modules {
    tokens: Loaded<tokens::GuestIndices>,
    manifest: Loaded<manifest::GuestIndices>,
    routing: Loaded<routing::GuestIndices>,
    signaling: Loaded<signaling::GuestIndices>,
    /// Where each job's component came from, for [`Components::sources`].
    sources: [ComponentSource; 4],
}

/// Where a job's component was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ComponentSource {
    /// The component built with and embedded in this crate.
    Embedded,
    /// A file in the modules directory.
    File(PathBuf),
}

/// The engine and everything needed to make a store or load a component.
struct Runtime {
    engine: Engine,
    /// One linker per job, in [`Job::ALL`] order, each with exactly the
    /// host imports of that job's world (see [`job_linker`]).
    linkers: [Linker<HostState>; 4],
    limits: ComponentLimits,
    deadline_ticks: u64,
    embedded: [OnceLock<Component>; 4],
    imports: RwLock<Arc<HostImports>>,
    /// Bumped by [`Components::set_imports`]: kept instances made before
    /// see the old imports and are not reused.
    generation: AtomicU64,
    /// One key-value store per job ([`Job::ALL`] order): a job cannot read,
    /// forge or evict another's entries (a replacement signaling module
    /// filling its store cannot push the tokens job's replay records out).
    kvs: [Arc<Kv>; 4],
}

/// The edge components, ready to call.
///
/// Each job's component is compiled and pre-instantiated once (at
/// [`load`](Self::load) / [`reload`](Self::reload)); calls run in a `Store`
/// from the pooling allocator, with a memory cap and an epoch deadline
/// ([`ComponentLimits`]), so a misbehaving component fails only its own
/// call ([`ComponentError`]).
///
/// Instance policy: a component loaded from the modules directory (an
/// operator's module) gets a fresh instance per call by default
/// ([`ComponentLimits::max_module_instance_reuse`] = 1), so a call cannot
/// see state from an earlier one whatever the module does. The embedded
/// components, which we build and whose code keeps no state across calls,
/// answer up to [`ComponentLimits::max_instance_reuse`] calls per instance
/// (bounded reuse: about half the cost per call of a fresh instance). A
/// failed call always discards its instance. The key-value store is the one
/// piece of guest-visible state that calls share by design.
///
/// Calls are synchronous and take tens of microseconds (see the
/// `component_call` benchmark): call them in place from async code.
/// `Components` is `Send + Sync`; share it behind an `Arc`.
/// [`reload`](Self::reload) swaps the whole set atomically; calls already
/// running finish on the components they started with.
pub struct Components {
    runtime: Runtime,
    modules: RwLock<Arc<Modules>>,
    // Dropped last: stops the epoch thread.
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Components {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("limits", &self.runtime.limits)
            .field("sources", &self.sources())
            .finish_non_exhaustive()
    }
}

/// The linker for `job`: WASI 0.2 and exactly the host imports of the
/// job's world in `wit/edge.wit` — tokens: `config`, `keys`, `kv`;
/// manifest: none; routing: `config`, `registry`; signaling: `config`,
/// `keys`, `registry`, `kv`. A replacement component that imports more than
/// its world (a manifest rewriter asking for the token keys, a router
/// asking for the store) fails to link at load, with the missing import
/// named. No import hands out key bytes: `keys` signs and verifies by key
/// id.
fn job_linker(engine: &Engine, job: Job) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    fn get(state: &mut HostState) -> &mut HostState {
        state
    }
    // Every world uses the shared types.
    host_interfaces::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, get)?;
    let (config, keys, registry, kv) = match job {
        Job::Tokens => (true, true, false, true),
        Job::Manifest => (false, false, false, false),
        Job::Routing => (true, false, true, false),
        Job::Signaling => (true, true, true, true),
    };
    if config {
        host_interfaces::config::add_to_linker::<_, HasSelf<HostState>>(&mut linker, get)?;
    }
    if keys {
        host_interfaces::keys::add_to_linker::<_, HasSelf<HostState>>(&mut linker, get)?;
    }
    if registry {
        host_interfaces::registry::add_to_linker::<_, HasSelf<HostState>>(&mut linker, get)?;
    }
    if kv {
        host_interfaces::kv::add_to_linker::<_, HasSelf<HostState>>(&mut linker, get)?;
    }
    Ok(linker)
}

impl Components {
    /// Creates the engine (pooling allocator sized by `limits`, epoch
    /// interruption), starts the epoch thread and loads every job: from
    /// `<modules_dir>/<job>.wasm` ([`Job::file_name`]) where that file
    /// exists, else the embedded default.
    ///
    /// # Errors
    ///
    /// [`ComponentError::Engine`] if the engine cannot be created,
    /// [`ComponentError::ModulesDir`] if `modules_dir` is not a readable
    /// directory, [`ComponentError::Load`] if a component does not compile,
    /// link or export its job's interface.
    pub fn load(
        modules_dir: Option<&Path>,
        limits: ComponentLimits,
        imports: HostImports,
    ) -> Result<Self, ComponentError> {
        let engine_err = |e: wasmtime::Error| ComponentError::Engine(format!("{e:#}"));
        let engine = Engine::new(&engine_config(&limits)).map_err(engine_err)?;
        let linkers = [
            job_linker(&engine, Job::Tokens).map_err(engine_err)?,
            job_linker(&engine, Job::Manifest).map_err(engine_err)?,
            job_linker(&engine, Job::Routing).map_err(engine_err)?,
            job_linker(&engine, Job::Signaling).map_err(engine_err)?,
        ];
        let ticker = EpochTicker::start(&engine, limits.epoch_tick)
            .map_err(|e| ComponentError::Engine(format!("epoch thread: {e}")))?;
        let kv = || {
            Arc::new(Kv::new(
                limits.kv_max_entries,
                limits.kv_max_key_bytes,
                limits.kv_max_value_bytes,
            ))
        };
        let kvs = [kv(), kv(), kv(), kv()];
        let runtime = Runtime {
            engine,
            linkers,
            deadline_ticks: limits.deadline_ticks(),
            limits,
            embedded: Default::default(),
            imports: RwLock::new(Arc::new(imports)),
            generation: AtomicU64::new(0),
            kvs,
        };
        let modules = runtime.build_modules(modules_dir)?;
        Ok(Self {
            runtime,
            modules: RwLock::new(Arc::new(modules)),
            _ticker: ticker,
        })
    }

    /// Loads every job again from `modules_dir` (embedded defaults for jobs
    /// without a file there) and swaps the new set in atomically. Calls
    /// already running finish on the old components; on error nothing is
    /// swapped and the old set stays in service.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load): [`ComponentError::ModulesDir`],
    /// [`ComponentError::Load`].
    pub fn reload(&self, modules_dir: &Path) -> Result<(), ComponentError> {
        let modules = self.runtime.build_modules(Some(modules_dir))?;
        *self.modules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(modules);
        Ok(())
    }

    /// Replaces the configuration, keys and registry view seen by calls
    /// that start after this returns (key rotation, config reload).
    pub fn set_imports(&self, imports: HostImports) {
        *self
            .runtime
            .imports
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(imports);
        self.runtime.generation.fetch_add(1, Ordering::AcqRel);
        let modules = self.current();
        for idle in [
            &modules.tokens.idle,
            &modules.manifest.idle,
            &modules.routing.idle,
            &modules.signaling.idle,
        ] {
            idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Where each job's component currently comes from, in [`Job::ALL`]
    /// order.
    pub fn sources(&self) -> Vec<(Job, ComponentSource)> {
        let modules = self.current();
        Job::ALL
            .iter()
            .map(|&job| (job, modules.sources[index(job)].clone()))
            .collect()
    }

    /// The limits in force.
    pub fn limits(&self) -> &ComponentLimits {
        &self.runtime.limits
    }

    /// Calls one instance of `job`'s current component may answer (1: a
    /// fresh instance per call): [`ComponentLimits::max_instance_reuse`]
    /// for the embedded default, [`ComponentLimits::max_module_instance_reuse`]
    /// for a file from the modules directory.
    pub fn instance_reuse(&self, job: Job) -> u32 {
        let modules = self.current();
        match job {
            Job::Tokens => modules.tokens.max_reuse,
            Job::Manifest => modules.manifest.max_reuse,
            Job::Routing => modules.routing.max_reuse,
            Job::Signaling => modules.signaling.max_reuse,
        }
    }

    /// Verifies an access token (CTA-5007 CAT or RFC 7519 JWT) presented
    /// for `url` (the absolute request URL,
    /// `https://edge.example/live/cam1/index.m3u8`; empty for session
    /// set-up) at `now_unix` (Unix seconds) through the tokens component
    /// (`livestack:edge/tokens.verify`). Replay records go to the shared
    /// key-value store; a renewed token comes back in
    /// [`Verified::renewal`].
    ///
    /// # Errors
    ///
    /// The outer `Err` is a component failure ([`ComponentError`]); the
    /// inner one is the component's verdict ([`TokenError`]).
    pub fn verify_token(
        &self,
        token: &str,
        url: &str,
        now_unix: u64,
    ) -> Result<Result<Verified, TokenError>, ComponentError> {
        self.call(
            Job::Tokens,
            |m| &m.tokens,
            |indices, store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_verify(&mut *store, token, url, now_unix)
            },
        )
    }

    /// Mints a token as `request` says (`livestack:edge/tokens.mint`),
    /// signed with the configured key ([`HostImports::keys`]).
    ///
    /// # Errors
    ///
    /// Outer: [`ComponentError`]. Inner: [`TokenError::InvalidOptions`]
    /// (bad stream name, zero lifetime), [`TokenError::UnknownKey`],
    /// [`TokenError::KeyError`] (no key can sign as asked).
    pub fn mint_token(
        &self,
        request: &MintRequest,
    ) -> Result<Result<String, TokenError>, ComponentError> {
        self.call(
            Job::Tokens,
            |m| &m.tokens,
            |indices, store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_mint(&mut *store, request)
            },
        )
    }

    /// Rewrites an HLS playlist (RFC 8216bis) through the manifest component
    /// (`livestack:edge/manifest.rewrite`).
    ///
    /// # Errors
    ///
    /// Outer: [`ComponentError`]. Inner: the component's
    /// [`ManifestError`] (the origin sent an unusable playlist, or the
    /// options are invalid).
    pub fn rewrite_manifest(
        &self,
        playlist: &str,
        opts: &RewriteOptions,
    ) -> Result<Result<String, ManifestError>, ComponentError> {
        self.call(
            Job::Manifest,
            |m| &m.manifest,
            |indices, store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_rewrite(&mut *store, playlist, opts)
            },
        )
    }

    /// Picks the origin node for `stream` (`live/NAME`) and a client at
    /// `geo` through the routing component (`livestack:edge/routing.pick`),
    /// which reads the registry view of [`HostImports::registry`].
    ///
    /// The answer must name a node of that registry, and what is returned
    /// is the registry's record of it, not the component's: a replacement
    /// routing module can choose among the origins, never send the edge
    /// (and its origin credential) to a URL of its own.
    ///
    /// # Errors
    ///
    /// Outer: [`ComponentError`]. Inner: the component's [`RoutingError`],
    /// or [`RoutingError::Other`] when it named a node the registry does
    /// not list.
    pub fn route(
        &self,
        stream: &str,
        geo: &ClientGeo,
    ) -> Result<Result<Route, RoutingError>, ComponentError> {
        let answer = self.call(
            Job::Routing,
            |m| &m.routing,
            |indices, store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_pick(&mut *store, stream, geo)
            },
        )?;
        let Ok(route) = answer else {
            return Ok(answer);
        };
        let registry = Arc::clone(
            &self
                .runtime
                .imports
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .registry,
        );
        Ok(
            match registry.nodes().into_iter().find(|n| n.id == route.node.id) {
                Some(node) => Ok(Route {
                    node,
                    reason: route.reason,
                }),
                None => {
                    // The edge counts and logs routing errors once each.
                    Err(RoutingError::Other(format!(
                        "the routing component named node {:?}, which the registry does not list",
                        route.node.id
                    )))
                }
            },
        )
    }

    /// Answers a WHIP (RFC 9725) / WHEP / WebTransport signaling request
    /// through the signaling component (`livestack:edge/signaling.handle`).
    /// Refusals are HTTP statuses in the response.
    ///
    /// # Errors
    ///
    /// [`ComponentError`] only.
    pub fn signal(&self, req: SignalingRequest) -> Result<SignalingResponse, ComponentError> {
        self.call(
            Job::Signaling,
            |m| &m.signaling,
            |indices, store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_handle(&mut *store, &req)
            },
        )
    }

    fn current(&self) -> Arc<Modules> {
        Arc::clone(&self.modules.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on an instance of `job`'s component: a kept one when its
    /// reuse limit allows and one is idle, else a fresh one.
    fn call<I, R>(
        &self,
        job: Job,
        select: impl FnOnce(&Modules) -> &Loaded<I>,
        f: impl FnOnce(&I, &mut Store<HostState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, ComponentError> {
        let modules = self.current();
        let loaded = select(&modules);
        let runtime = &self.runtime;
        let generation = runtime.generation.load(Ordering::Acquire);
        let reuse = loaded.max_reuse > 1;
        let warm = if reuse {
            let mut idle = loaded.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.pop().filter(|w| w.generation == generation)
        } else {
            None
        };
        let (mut store, instance, uses) = match warm {
            Some(mut warm) => {
                warm.store.set_epoch_deadline(runtime.deadline_ticks);
                (warm.store, warm.instance, warm.uses)
            }
            None => {
                let mut store = runtime.new_store(job);
                let instance = loaded
                    .pre
                    .instantiate(&mut store)
                    .map_err(|e| classify(job, &store, e, true))?;
                (store, instance, 0)
            }
        };
        // Any error drops the store: a trapped instance is never called again.
        let answer = f(&loaded.indices, &mut store, &instance)
            .map_err(|e| classify(job, &store, e, false))?;
        let uses = uses.saturating_add(1);
        if reuse
            && uses < loaded.max_reuse
            && runtime.generation.load(Ordering::Acquire) == generation
        {
            let mut idle = loaded.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < runtime.limits.max_idle_instances {
                idle.push(Warm {
                    store,
                    instance,
                    uses,
                    generation,
                });
            }
        }
        Ok(answer)
    }
}

impl Runtime {
    /// A store for one call: memory/table caps, epoch deadline.
    fn new_store(&self, job: Job) -> Store<HostState> {
        let imports = Arc::clone(&self.imports.read().unwrap_or_else(PoisonError::into_inner));
        let state = HostState::new(
            imports,
            Arc::clone(&self.kvs[job as usize]),
            self.limits.max_memory_bytes,
            self.limits.max_table_elements,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        store
    }

    fn build_modules(&self, dir: Option<&Path>) -> Result<Modules, ComponentError> {
        if let Some(dir) = dir
            && let Err(e) = std::fs::read_dir(dir)
        {
            return Err(ComponentError::ModulesDir {
                dir: dir.display().to_string(),
                message: e.to_string(),
            });
        }
        let (tokens, tokens_src) =
            self.load_job(dir, Job::Tokens, tokens::GuestIndices::new, |i, s, inst| {
                i.load(s, inst).map(drop)
            })?;
        let (manifest, manifest_src) = self.load_job(
            dir,
            Job::Manifest,
            manifest::GuestIndices::new,
            |i, s, inst| i.load(s, inst).map(drop),
        )?;
        let (routing, routing_src) = self.load_job(
            dir,
            Job::Routing,
            routing::GuestIndices::new,
            |i, s, inst| i.load(s, inst).map(drop),
        )?;
        let (signaling, signaling_src) = self.load_job(
            dir,
            Job::Signaling,
            signaling::GuestIndices::new,
            |i, s, inst| i.load(s, inst).map(drop),
        )?;
        Ok(Modules {
            tokens,
            manifest,
            routing,
            signaling,
            sources: [tokens_src, manifest_src, routing_src, signaling_src],
        })
    }

    /// Compiles (or reuses the compiled embedded default), links, resolves
    /// the export indices and type-checks the exports with one trial
    /// instantiation.
    fn load_job<I>(
        &self,
        dir: Option<&Path>,
        job: Job,
        indices: fn(&InstancePre<HostState>) -> wasmtime::Result<I>,
        check: fn(&I, &mut Store<HostState>, &Instance) -> wasmtime::Result<()>,
    ) -> Result<(Loaded<I>, ComponentSource), ComponentError> {
        let file = dir.map(|d| d.join(job.file_name())).filter(|f| f.is_file());
        let source_name = file.as_ref().map_or_else(
            || "embedded default".to_owned(),
            |f| f.display().to_string(),
        );
        let load_err = |message: String| ComponentError::Load {
            job,
            source_name: source_name.clone(),
            message,
        };
        let (component, source) = match &file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
                let component = Component::from_binary(&self.engine, &bytes)
                    .map_err(|e| load_err(format!("{e:#}")))?;
                (component, ComponentSource::File(path.clone()))
            }
            None => (
                self.embedded(job).map_err(|e| load_err(format!("{e:#}")))?,
                ComponentSource::Embedded,
            ),
        };
        let pre = self.linkers[job as usize]
            .instantiate_pre(&component)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let indices = indices(&pre).map_err(|e| load_err(format!("{e:#}")))?;
        let mut store = self.new_store(job);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| load_err(format!("trial instantiation: {e:#}")))?;
        check(&indices, &mut store, &instance).map_err(|e| load_err(format!("{e:#}")))?;
        let max_reuse = match source {
            ComponentSource::Embedded => self.limits.max_instance_reuse,
            ComponentSource::File(_) => self.limits.max_module_instance_reuse,
        };
        Ok((
            Loaded {
                pre,
                indices,
                max_reuse,
                idle: Mutex::new(Vec::new()),
            },
            source,
        ))
    }

    /// The embedded default for `job`, compiled on first use.
    fn embedded(&self, job: Job) -> wasmtime::Result<Component> {
        let slot = &self.embedded[index(job)];
        if let Some(component) = slot.get() {
            return Ok(component.clone());
        }
        let component = Component::from_binary(&self.engine, EMBEDDED[index(job)])?;
        Ok(slot.get_or_init(|| component).clone())
    }
}

/// Engine configuration: Cranelift at `speed`, epoch interruption, pooling
/// allocator with copy-on-write memory images.
///
/// Freeing a slot resets its memory. Without `PAGEMAP_SCAN` wasmtime resets
/// all of the first `keep_resident_bytes` (`min` the memory's size: the
/// whole 192–256 KiB initial memory of our components, stack, data image
/// and heap) on every call, about 45 % of a fresh call; with it
/// (Linux ≥ 6.7, probed at start, a no-op elsewhere) only the pages the
/// slot has written are reset.
fn engine_config(limits: &ComponentLimits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let instances = limits.max_instances.max(1);
    pool.total_component_instances(instances)
        // A Rust wasm32-wasip2 component has a few core instances (the
        // program, the WASI adapter, shims); leave room.
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .max_memory_size(limits.max_memory_bytes)
        .table_elements(limits.max_table_elements)
        // Reset the low memory a call touches with memset instead of
        // madvise, so a reused slot takes no page faults.
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        .table_keep_resident(limits.keep_resident_bytes)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Sorts a wasmtime error from a call into the host-side failure kinds.
fn classify(
    job: Job,
    store: &Store<HostState>,
    err: wasmtime::Error,
    instantiating: bool,
) -> ComponentError {
    if store.data().limiter.exceeded || err.is::<LimitExceeded>() {
        return ComponentError::ResourceLimit { job };
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return ComponentError::DeadlineExceeded { job };
    }
    if err.is::<PoolConcurrencyLimitError>() {
        return ComponentError::Overloaded { job };
    }
    let message = format!("{err:#}");
    if instantiating {
        ComponentError::Instantiate { job, message }
    } else {
        ComponentError::Trap { job, message }
    }
}
