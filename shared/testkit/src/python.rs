//! The Python of the client-compatibility tests: the virtualenv of `scripts/python-env.sh`, and running
//! a command with a deadline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The first run installs the pinned packages from PyPI.
const ENV_TIMEOUT: Duration = Duration::from_secs(600);

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `command` to completion, killing it after `timeout`; stdout and stderr are captured.
pub fn run_with_timeout(mut command: Command, what: &str, timeout: Duration) -> Output {
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
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            let stderr = stderr.join().unwrap().unwrap_or_default();
            panic!(
                "{what}: no answer within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    }
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
