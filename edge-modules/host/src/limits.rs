//! Resource limits of the component runtime.

use std::time::Duration;

/// Bounds that keep a misbehaving component from hanging or exhausting the
/// edge host. [`Default`] gives values sized for the edge jobs (each call
/// takes microseconds and well under 1 MiB).
///
/// Worst-case memory use is `max_instances × max_memory_bytes` of linear
/// memory (of which `max_instances × keep_resident_bytes` stays resident
/// once touched) plus the host's key-value stores, one per job that
/// imports `kv` (tokens, signaling), each at most
/// `kv_max_entries × (kv_max_key_bytes + kv_max_value_bytes)`; address
/// space reserved by the pooling allocator is larger (guard regions) but not
/// committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentLimits {
    /// Wall-clock budget of one call (instantiation included), enforced with
    /// epoch interruption: a call is interrupted after at least
    /// `deadline − epoch_tick` and at most `deadline + epoch_tick`.
    /// Default 50 ms.
    pub deadline: Duration,
    /// Period of the background thread that advances the engine epoch.
    /// Default 1 ms. Shorter is more precise and costs more wake-ups.
    pub epoch_tick: Duration,
    /// Largest linear memory one call may use, bytes (rounded down to
    /// 64 KiB pages). Default 64 MiB.
    pub max_memory_bytes: usize,
    /// Largest table one call may use, elements. Default 20 000.
    pub max_table_elements: usize,
    /// Component instances that may run at the same time (pooling
    /// allocator slots); a call beyond it gets
    /// [`ComponentError::Overloaded`](crate::ComponentError::Overloaded).
    /// Default 256.
    pub max_instances: u32,
    /// Calls one instance of an **embedded** component (the defaults
    /// built and shipped with this crate) may answer before it is dropped.
    /// Default 1000 (bounded reuse). An instance that answered without
    /// error is kept (at most `max_idle_instances` per job) and answers the
    /// next call, which then costs about half as much as one in a fresh
    /// instance (see the `component_call` benchmark).
    ///
    /// Why this is safe enough for our own components: their code keeps no
    /// state across calls (no statics, caches or globals written by a job;
    /// every input arrives as a call argument or host import and every
    /// output leaves as the return value), it is safe Rust apart from the
    /// generated bindings, so it never reads memory it did not write in the
    /// same call. An earlier viewer's token can remain in freed heap
    /// memory of a kept instance, but no call can observe it. What an
    /// operator's module does we cannot know: see
    /// `max_module_instance_reuse`. 1 gives every call a fresh instance
    /// (full isolation, slower).
    ///
    /// A failed call (trap, deadline, memory limit) always drops its
    /// instance, and so do
    /// [`Components::set_imports`](crate::Components::set_imports) and
    /// [`Components::reload`](crate::Components::reload).
    pub max_instance_reuse: u32,
    /// Calls one instance of a component loaded from the **modules
    /// directory** (operator-provided, replacing an embedded default) may
    /// answer before it is dropped. Default 1: a fresh instance per call,
    /// as `wasmtime serve` does for WASI 0.2, so no call can see memory of
    /// an earlier one whatever the module keeps there. Raise it only for
    /// modules known to keep no per-viewer state across calls; the same
    /// rules as `max_instance_reuse` apply.
    pub max_module_instance_reuse: u32,
    /// Idle instances kept per job when its reuse limit
    /// (`max_instance_reuse` or `max_module_instance_reuse`) is above 1;
    /// each holds one of the `max_instances` slots. Default 16.
    pub max_idle_instances: usize,
    /// Most bytes of each linear memory (and of each table, as bytes of
    /// elements) that the pooling allocator resets in place (`memset`, or
    /// a copy of the initial image) and keeps resident when a slot is
    /// freed, instead of returning the pages to the kernel: the components
    /// link a 128 KiB stack at the bottom of memory, so a call's stack,
    /// data and first heap pages sit there and the next instance in the
    /// slot takes no page faults. On Linux ≥ 6.7 only pages the slot has
    /// written are reset (`PAGEMAP_SCAN`), so a small working set costs
    /// little even with a larger value. Default 512 KiB; resident memory
    /// grows by up to this per slot used.
    pub keep_resident_bytes: usize,
    /// Entries in each job's key-value store (jobs do not share one: a
    /// module cannot read, forge or evict another job's entries). Default
    /// 100 000.
    pub kv_max_entries: usize,
    /// Longest key-value key, bytes. Default 256.
    pub kv_max_key_bytes: usize,
    /// Longest key-value value, bytes. Default 4 KiB.
    pub kv_max_value_bytes: usize,
}

impl Default for ComponentLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(50),
            epoch_tick: Duration::from_millis(1),
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_instances: 256,
            max_instance_reuse: 1000,
            max_module_instance_reuse: 1,
            max_idle_instances: 16,
            keep_resident_bytes: 512 << 10,
            kv_max_entries: 100_000,
            kv_max_key_bytes: 256,
            kv_max_value_bytes: 4 << 10,
        }
    }
}

impl ComponentLimits {
    /// The epoch deadline in ticks: `ceil(deadline / epoch_tick)`, at least 1.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}
