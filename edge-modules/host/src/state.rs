//! Per-call store data: WASI context, resource table, limits and the host
//! imports (wasmtime serve's `View` habit).

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::imports::HostImports;
use crate::kv::Kv;

/// The data of one call's `Store`.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) imports: Arc<HostImports>,
    pub(crate) kv: Arc<Kv>,
}

impl HostState {
    pub(crate) fn new(
        imports: Arc<HostImports>,
        kv: Arc<Kv>,
        max_memory_bytes: usize,
        max_table_elements: usize,
    ) -> Self {
        // No arguments, environment, preopened directories or network: the
        // jobs get their inputs through their interface only. Standard
        // output/error go nowhere.
        let wasi = WasiCtx::builder().build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                max_memory_bytes,
                max_table_elements,
                exceeded: false,
            },
            imports,
            kv,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Memory and table caps of one call; remembers whether one was hit so that
/// the resulting trap is reported as
/// [`ComponentError::ResourceLimit`](crate::ComponentError::ResourceLimit).
pub(crate) struct Limiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    pub(crate) exceeded: bool,
}

/// The error a limiter raises; it traps the guest at once (instead of
/// letting `memory.grow` return -1, which a Rust guest turns into an abort
/// that looks like any other trap).
#[derive(Debug)]
pub(crate) struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("resource limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::new(LimitExceeded));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.exceeded = true;
            return Err(wasmtime::Error::new(LimitExceeded));
        }
        Ok(true)
    }
}
