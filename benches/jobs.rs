//! Job pool benchmark (not a test): `cargo bench --bench jobs`.
//!
//! 1. Peak RSS of this process while a job writes 1 GiB through the pool
//!    (output is spooled to files, so it must stay flat).
//! 2. Jobs created and completed per second for /bin/true through the pool,
//!    against a plain spawn-and-wait loop of the same command at the same
//!    parallelism (`rcmd::testing::raw_spawn_rate`, which bench/run.sh's
//!    load generator measures too), in the same run. Medians of several
//!    rounds.
//!
//! Set JOBS_BENCH_SECONDS to change the length of each round (default 2).

use std::time::{Duration, Instant};

use rcmd::jobs::{JobPool, JobSpec, PoolConfig, Status, Termination};
use rcmd::testing::raw_spawn_rate;

const ROUNDS: usize = 5;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// The pool: `threads` tasks, each creating a /bin/true job and waiting.
fn pool_rate(
    runtime: &tokio::runtime::Runtime,
    pool: &std::sync::Arc<JobPool>,
    threads: usize,
    round: Duration,
) -> f64 {
    runtime.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..threads)
            .map(|_| {
                let pool = std::sync::Arc::clone(pool);
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while started.elapsed() < round {
                        let id = pool.try_create(JobSpec::new("/bin/true", vec![])).await.unwrap();
                        let status = pool.wait(id).await.unwrap();
                        assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
                        pool.delete(id).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let round = Duration::from_secs_f64(
        std::env::var("JOBS_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("rcmd-bench-jobs-{}", std::process::id()));
    let pool = {
        let _guard = runtime.enter();
        std::sync::Arc::new(JobPool::new(PoolConfig::new(&dir)).unwrap())
    };

    let before = peak_rss_kib();
    let started = Instant::now();
    let id = runtime
        .block_on(pool.try_create(JobSpec::new(
            "head",
            vec!["-c".into(), (1u64 << 30).to_string(), "/dev/zero".into()],
        )))
        .unwrap();
    let status = runtime.block_on(pool.wait(id)).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    // The pool's own count, not a look at its files: where it keeps them is its business.
    assert!(!status.truncated);
    assert_eq!(pool.stored_bytes(), 1 << 30);
    println!(
        "1 GiB job: peak RSS {:.1} MiB before, {:.1} MiB after; spooled at {:.2} GiB/s",
        before as f64 / 1024.0,
        peak_rss_kib() as f64 / 1024.0,
        1.0 / elapsed.as_secs_f64()
    );
    runtime.block_on(pool.delete(id)).unwrap();

    for threads in [1, 2, 8] {
        let mut raw = Vec::new();
        let mut pooled = Vec::new();
        let mut ratios = Vec::new();
        for _ in 0..ROUNDS {
            let r = raw_spawn_rate(threads, round);
            let p = pool_rate(&runtime, &pool, threads, round);
            raw.push(r);
            pooled.push(p);
            ratios.push(p / r);
        }
        let (raw_median, raw_low, raw_high) = median(raw);
        let (pool_median, pool_low, pool_high) = median(pooled);
        let (ratio, ratio_low, ratio_high) = median(ratios);
        println!(
            "/bin/true x{threads}: pool {pool_median:.0}/s ({pool_low:.0}-{pool_high:.0}), raw {raw_median:.0}/s ({raw_low:.0}-{raw_high:.0}), ratio {:.0}% ({:.0}-{:.0}%)",
            ratio * 100.0,
            ratio_low * 100.0,
            ratio_high * 100.0
        );
    }
    drop(pool);
    let _ = std::fs::remove_dir_all(&dir);
}
