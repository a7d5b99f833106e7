//! The baseline the job benchmarks compare with: `threads` OS threads, each
//! spawning /bin/true (stdin from /dev/null, stdout and stderr piped, as a
//! job is) and waiting for it, for `round`. Included by benches/jobs.rs and
//! examples/loadgen.rs, so both measure exactly the same loop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes spawned and reaped per second.
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
