//! The Python of the client-compatibility tests: the virtualenv of `scripts/python-env.sh`, and running
//! a command with a deadline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first run installs the pinned packages from PyPI.
const ENV_TIMEOUT: Duration = Duration::from_secs(600);

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `command` to completion, killing it after `timeout`; stdout and stderr are captured.
pub fn run_with_timeout(command: Command, what: &str, timeout: Duration) -> Output {
    Captured::spawn(command, what).wait(timeout)
}

/// A child process started with its stdout and stderr read to their end on threads of their own, so
/// that it never blocks on a full pipe while the caller does something else. Dropping it kills the
/// process.
pub struct Captured {
    what: String,
    child: Child,
    stdout: Option<JoinHandle<std::io::Result<Vec<u8>>>>,
    stderr: Option<JoinHandle<std::io::Result<Vec<u8>>>>,
}

impl Captured {
    /// Starts `command` (stdin closed), named `what` in failures.
    pub fn spawn(mut command: Command, what: &str) -> Captured {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                pipe.read_to_end(&mut bytes).map(|_| bytes)
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        Captured {
            what: what.to_owned(),
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits for the process to exit, up to `timeout` (then kills it and panics with its stderr).
    pub fn wait(mut self, timeout: Duration) -> Output {
        let what = self.what.clone();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                self.child.wait().unwrap();
                let stderr = join(&mut self.stderr).unwrap_or_default();
                panic!(
                    "{what}: no answer within {timeout:?}; stderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: join(&mut self.stdout).unwrap(),
            stderr: join(&mut self.stderr).unwrap(),
        }
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a pipe-reading thread read.
fn join(pipe: &mut Option<JoinHandle<std::io::Result<Vec<u8>>>>) -> std::io::Result<Vec<u8>> {
    pipe.take().expect("joined once").join().unwrap()
}

/// The virtualenv's python, created by `scripts/python-env.sh` when missing or out of date.
pub fn python_venv() -> PathBuf {
    let root = repo_root();
    let mut command = Command::new("bash");
    command
        .arg(root.join("scripts/python-env.sh"))
        .current_dir(&root);
    let out = run_with_timeout(command, "scripts/python-env.sh", ENV_TIMEOUT);
    assert!(
        out.status.success(),
        "scripts/python-env.sh failed ({}): this test needs python3 with venv and, once, PyPI.\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        Path::new(&path).is_file(),
        "scripts/python-env.sh printed {path:?}, not a python"
    );
    PathBuf::from(path)
}
