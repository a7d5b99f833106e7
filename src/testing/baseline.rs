//! [`raw_spawn_rate`]: what the machine itself does without rcmd, the
//! baseline that job throughput is compared with (by rcmd's own
//! benchmarks, and by anyone's who measure code on top of it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes spawned and reaped per second by `threads` OS threads, each
/// spawning /bin/true (stdin from /dev/null, stdout and stderr piped, as a
/// job's are) and waiting for it, over `round`.
///
/// # Panics
///
/// If /bin/true cannot be spawned or does not succeed.
pub fn raw_spawn_rate(threads: usize, round: Duration) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < round {
                    let status = Command::new("/bin/true")
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .status()
                        .expect("spawn /bin/true");
                    assert!(status.success());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}
