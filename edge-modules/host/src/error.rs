//! Host-side failures of a component call, kept apart from the guest's own
//! typed results.

use std::fmt;

/// The edge jobs, one component each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Job {
    /// `livestack:edge/tokens`: CAT / JWT verify and mint.
    Tokens,
    /// `livestack:edge/manifest`: LL-HLS playlist rewriting.
    Manifest,
    /// `livestack:edge/routing`: origin selection.
    Routing,
    /// `livestack:edge/signaling`: WHIP / WHEP / WebTransport set-up.
    Signaling,
}

impl Job {
    /// Every job, in a fixed order.
    pub const ALL: [Job; 4] = [Job::Tokens, Job::Manifest, Job::Routing, Job::Signaling];

    /// The job's name as used in file names and logs (`"tokens"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Job::Tokens => "tokens",
            Job::Manifest => "manifest",
            Job::Routing => "routing",
            Job::Signaling => "signaling",
        }
    }

    /// The file a modules directory holds this job's component in:
    /// `<name>.wasm` (`tokens.wasm`, ...).
    pub fn file_name(self) -> String {
        format!("{}.wasm", self.name())
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the host could not get an answer from a component.
///
/// These are never the guest's verdict (a refused token or a malformed
/// playlist come back as the inner `Err` of a call's result): they say the
/// component itself failed or was stopped. Map them to 500/502/503 at the
/// HTTP layer. A failed call never affects later calls: its instance is
/// dropped, and the next call gets a fresh one or a kept instance that
/// answered cleanly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The component trapped (a guest panic, `unreachable`, an out-of-bounds
    /// access, an invalid value crossing the boundary, ...).
    #[error("{job} component trapped: {message}")]
    Trap {
        /// Which job.
        job: Job,
        /// wasmtime's description of the trap, with the guest backtrace if
        /// one was captured.
        message: String,
    },
    /// The call ran past its epoch deadline
    /// ([`ComponentLimits::deadline`](crate::ComponentLimits::deadline)) and
    /// was interrupted.
    #[error("{job} component exceeded its deadline")]
    DeadlineExceeded {
        /// Which job.
        job: Job,
    },
    /// The call tried to grow its linear memory or a table beyond
    /// [`ComponentLimits::max_memory_bytes`](crate::ComponentLimits::max_memory_bytes)
    /// / [`ComponentLimits::max_table_elements`](crate::ComponentLimits::max_table_elements)
    /// and was stopped.
    #[error("{job} component exceeded its resource limit")]
    ResourceLimit {
        /// Which job.
        job: Job,
    },
    /// Every pooled instance slot is in use
    /// ([`ComponentLimits::max_instances`](crate::ComponentLimits::max_instances)):
    /// the host is overloaded; retry later (HTTP 503).
    #[error("{job} component: no free instance slot")]
    Overloaded {
        /// Which job.
        job: Job,
    },
    /// Instantiation failed for a reason other than the above (a start
    /// function failed, an import is missing).
    #[error("could not instantiate the {job} component: {message}")]
    Instantiate {
        /// Which job.
        job: Job,
        /// wasmtime's description.
        message: String,
    },
    /// A component file could not be read, is not a valid component, does
    /// not fit the pool limits, imports something the host does not provide,
    /// or does not export the job's interface (`livestack:edge/<job>@0.2.0`).
    #[error("could not load the {job} component from {source_name}: {message}")]
    Load {
        /// Which job.
        job: Job,
        /// The file, or `"embedded default"`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The wasmtime engine could not be created from the limits (for
    /// example the pooling allocator could not reserve its address space).
    #[error("could not create the wasmtime engine: {0}")]
    Engine(String),
    /// The modules directory could not be listed.
    #[error("could not read the modules directory {dir}: {message}")]
    ModulesDir {
        /// The directory.
        dir: String,
        /// The I/O error.
        message: String,
    },
}
