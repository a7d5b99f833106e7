//! The spawn path's cost per job with a large server RSS (bench/contain.sh).
//!
//! `spawn_rss MIB JOBS`: touches MIB MiB of memory, then times JOBS runs of
//! /bin/true, one at a time, each started and waited for, three ways in the
//! same process: through a job pool with this host's cgroups (rcmd's path:
//! clone(CLONE_VM|CLONE_VFORK), a cgroup per job), std's Command (posix_spawn,
//! no cgroup), and std's Command with a `pre_exec` (fork, as any code
//! between fork and exec forces on std). Prints the median microseconds of each.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use rcmd::jobs::{Cgroups, Containment, JobPool, JobSpec, PoolConfig};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn time_each(jobs: usize, mut run: impl FnMut()) -> f64 {
    median(
        (0..jobs)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

fn std_spawn(fork: bool) {
    let mut command = Command::new("/bin/true");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if fork {
        // SAFETY: the closure does nothing; it only makes std fork.
        unsafe { command.pre_exec(|| Ok(())) };
    }
    assert!(command.status().unwrap().success());
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("MIB JOBS")).collect();
    let (mib, jobs) = (args[0], args[1]);
    let ballast = vec![1u8; mib << 20];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("rcmd-spawn-rss-{}", std::process::id()));
    let rcmd_us = runtime.block_on(async {
        let cgroups = Arc::new(Cgroups::detect(&dir).expect("cgroups (run as root)"));
        let config = PoolConfig { containment: Containment::Cgroups(cgroups), ..PoolConfig::new(&dir) };
        let pool = JobPool::new(config).unwrap();
        let mut times = Vec::new();
        for _ in 0..jobs {
            let started = Instant::now();
            let id = pool.try_create(JobSpec::new("/bin/true", vec![])).await.unwrap();
            pool.wait(id).await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1e6);
            pool.delete(id).await.unwrap();
        }
        median(times)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let posix_spawn_us = time_each(jobs, || std_spawn(false));
    let fork_us = time_each(jobs.min(50), || std_spawn(true));
    println!(
        "spawn_rss mib={mib} rss_mib={} rcmd_us={rcmd_us:.0} posix_spawn_us={posix_spawn_us:.0} fork_us={fork_us:.0}",
        (ballast.iter().step_by(4096).map(|&b| b as usize).sum::<usize>() * 4096) >> 20
    );
}
