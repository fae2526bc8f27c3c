//! What the controller does to its own process before it holds a key: no core dumps (a
//! crash must not write the private keys to disk) and, on Linux, not dumpable — which also
//! closes `ptrace` and `/proc/<pid>/mem` to other processes of the same user.

/// Sets the core-file size limit to zero (soft and hard) and, on Linux, marks the process
/// not dumpable. Errors name the step that failed.
pub fn forbid_core_dumps() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{
            DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit,
        };
        let zero = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        setrlimit(Resource::Core, zero)
            .map_err(|e| std::io::Error::other(format!("setrlimit(RLIMIT_CORE, 0): {e}")))?;
        set_dumpable_behavior(DumpableBehavior::NotDumpable)
            .map_err(|e| std::io::Error::other(format!("prctl(PR_SET_DUMPABLE, 0): {e}")))?;
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};

    #[test]
    fn no_core_file_and_not_dumpable() {
        super::forbid_core_dumps().unwrap();
        let limit = getrlimit(Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    }
}
