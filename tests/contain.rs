//! A job is its cgroup: nothing it starts outlives it, whatever process group
//! or session it moves to, and its groups are gone once it is reaped. The
//! jobs library with this host's real cgroups (these tests run as root, as
//! CI does).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcmd::jobs::{Cgroups, JobId, JobPool, JobSpec, PoolConfig, Status, Termination};
use support::{TempDir, marked_sleep, pids_matching, wait_no_process, wait_until};

struct Contained {
    pool: JobPool,
    cgroups: Arc<Cgroups>,
    dir: TempDir,
}

fn contained(label: &str) -> Contained {
    let dir = TempDir::new(label);
    let cgroups = Arc::new(Cgroups::detect(dir.path()).expect("this host has cgroups (run as root)"));
    let mut config = PoolConfig::new(dir.path().join("data"));
    config.cgroups = Some(Arc::clone(&cgroups));
    config.stop_grace = Duration::from_secs(10);
    Contained { pool: JobPool::new(config).expect("pool"), cgroups, dir }
}

impl Contained {
    async fn sh(&self, script: &str) -> JobId {
        self.pool.create_job(JobSpec::new("sh", vec!["-c".into(), script.into()])).await
    }

    /// Job groups left in our folders.
    fn groups_left(&self) -> Vec<PathBuf> {
        self.cgroups.folders().iter().flat_map(|f| subdirs(f)).collect()
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default()
}

/// A script that leaves behind `n` sleeps that each left the job's process
/// group: half with `setsid`, half in a process group of their own
/// (`set -m`), all double-forked, then prints "ready".
fn escapees(sleep: &str, n: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do \
           if [ $((i % 2)) = 0 ]; then (setsid {sleep} 1000 >/dev/null 2>&1 &); \
           else (set -m; {sleep} 1000 >/dev/null 2>&1 &); fi; i=$((i+1)); done; echo ready"
    )
}

/// A script that starts `sleep` in a session of its own, holding stdout
/// open, prints "hi" and exits, but only once the sleep has left its group.
fn setsid_writer(dir: &Path, sleep: &str) -> String {
    let left = dir.join("left");
    format!(
        "setsid sh -c 'touch {left}; exec {sleep} 1000' & while [ ! -e {left} ]; do :; done; echo hi",
        left = left.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_in_its_own_cgroup_before_its_program_runs() {
    let c = contained("contain-placed");
    let id = c.sh("cat /proc/self/cgroup").await;
    c.pool.wait(id).await.unwrap();
    let out = String::from_utf8(c.pool.output(id).unwrap().stdout).unwrap();
    let core = c.cgroups.folders()[0].clone();
    let name = core.file_name().unwrap().to_str().unwrap();
    assert!(out.lines().any(|l| l.contains(name) && l.ends_with("/j1")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_that_left_the_group_die_when_the_main_process_exits() {
    let c = contained("contain-exit");
    let sleep = marked_sleep(c.dir.path(), "exit");
    let id = c.sh(&escapees(&sleep, 50)).await;
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status, Status::Completed(Termination::Exited(0)));
    assert!(pids_matching(&sleep).is_empty(), "all 50 are dead once the job completed");
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_delete_kill_processes_that_left_the_group() {
    let c = contained("contain-stop");
    let sleep = marked_sleep(c.dir.path(), "stop");
    for action in ["stop", "delete"] {
        // The main process waits, so only stop or delete can end the job;
        // it ignores SIGTERM, so stop escalates to SIGKILL.
        let id = c.sh(&format!("trap '' TERM; {}; exec {sleep} 1000", escapees(&sleep, 50))).await;
        let mut reader = c.pool.reader(id, rcmd::jobs::Stream::Stdout, 0).unwrap();
        let first = reader.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"ready\n");
        wait_until("all 51 sleeps run", Duration::from_secs(30), || pids_matching(&sleep).len() == 51);
        match action {
            "stop" => {
                let status = c.pool.stop_with_grace(id, Duration::from_millis(100)).await.unwrap();
                assert_eq!(status.status, Status::Completed(Termination::Signaled(9)));
            }
            _ => c.pool.delete(id).await.unwrap(),
        }
        assert!(pids_matching(&sleep).is_empty(), "{action}: none is left");
    }
    wait_until("no job group is left", Duration::from_secs(10), || c.groups_left().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_setsid_writer_closes_the_output_so_nothing_is_truncated() {
    // With a cgroup, the writer that left the group dies with the job and its
    // pipe closes at once: the 2 s drain is not needed.
    let c = contained("contain-drain");
    let sleep = marked_sleep(c.dir.path(), "drain");
    let id = c.sh(&setsid_writer(c.dir.path(), &sleep)).await;
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status, Status::Completed(Termination::Exited(0)));
    assert!(!status.truncated);
    assert_eq!(c.pool.output(id).unwrap().stdout, b"hi\n");
    assert!(pids_matching(&sleep).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_the_drain_gives_up_on_a_setsid_writer_and_marks_the_output_truncated() {
    let dir = TempDir::new("contain-fallback-drain");
    let pool = JobPool::new(PoolConfig::new(dir.path().join("data"))).unwrap();
    let sleep = marked_sleep(dir.path(), "fallback");
    let id = pool.create_job(JobSpec::new("sh", vec!["-c".into(), setsid_writer(dir.path(), &sleep)])).await;
    let status = pool.wait(id).await.unwrap();
    assert_eq!(status.status, Status::Completed(Termination::Exited(0)));
    assert!(status.truncated, "the escaped writer kept the pipe open past the drain");
    assert_eq!(pool.output(id).unwrap().stdout, b"hi\n");
    // It escaped: this is what cgroups fix. Clean up after it.
    for pid in pids_matching(&sleep) {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    wait_no_process(&sleep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_255_processes_stops_entirely() {
    let c = contained("contain-255");
    let sleep = marked_sleep(c.dir.path(), "many");
    let id = c
        .sh(&format!("i=0; while [ $i -lt 254 ]; do {sleep} 1000 & i=$((i+1)); done; echo ready; wait"))
        .await;
    let mut reader = c.pool.reader(id, rcmd::jobs::Stream::Stdout, 0).unwrap();
    assert_eq!(&reader.next_chunk().await.unwrap().unwrap()[..], b"ready\n");
    let status = c.pool.stop_with_grace(id, Duration::ZERO).await.unwrap();
    assert!(matches!(status.status, Status::Completed(Termination::Signaled(_))), "{status:?}");
    assert!(pids_matching(&sleep).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_job_group_is_left_after_a_thousand_jobs_and_the_folders_go_with_the_pool() {
    let c = contained("contain-thousand");
    let mut ids: Vec<JobId> = Vec::new();
    for _ in 0..1000 {
        ids.push(c.pool.create_job(JobSpec::new("true", vec![])).await);
    }
    for id in ids {
        let status = c.pool.wait(id).await.unwrap();
        assert_eq!(status.status, Status::Completed(Termination::Exited(0)));
    }
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
    let folders = c.cgroups.folders();
    let Contained { pool, cgroups, dir: _dir } = c;
    drop(pool);
    drop(cgroups);
    for folder in folders {
        assert!(!folder.exists(), "{} is removed", folder.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_a_job_makes_below_its_own_are_killed_and_removed_with_it() {
    let c = contained("contain-nested");
    let sleep = marked_sleep(c.dir.path(), "nested");
    let folders = c.cgroups.folders();
    let (core, pids) =
        (&folders[0], folders.iter().find(|f| f.to_string_lossy().contains("/pids/")).unwrap());
    // A job running as root makes a group below its own in the v2 and the
    // v1 pids hierarchy, and leaves a process there.
    let script = format!(
        "j=$(sed -n 's|^0::.*/||p' /proc/self/cgroup); mkdir {core}/$j/sub {pids}/$j/sub; \
         sh -c \"echo 0 > {core}/$j/sub/cgroup.procs && echo 0 > {pids}/$j/sub/cgroup.procs && exec {sleep} 1000\" & \
         while [ $(grep -c /sub /proc/$!/cgroup) -lt 2 ]; do :; done; echo ready",
        core = core.display(),
        pids = pids.display()
    );
    let limits = rcmd::jobs::Limits { pids: Some(100), ..Default::default() };
    let id = c.pool.create_job(JobSpec { limits, ..JobSpec::new("sh", vec!["-c".into(), script]) }).await;
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status, Status::Completed(Termination::Exited(0)), "{status:?}");
    assert_eq!(c.pool.output(id).unwrap().stdout, b"ready\n");
    wait_no_process(&sleep);
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_removes_a_dead_servers_folder_and_kills_its_jobs_but_not_a_live_ones() {
    let dir = TempDir::new("contain-leftovers");
    let live = Cgroups::detect(dir.path()).unwrap();
    let live_folder = live.folders()[0].clone();
    // A folder as a crashed server would leave it: our pid, another start
    // time (so it is not us), one job group with a process in it.
    let parent = live_folder.parent().unwrap();
    let dead = parent.join(format!("rcmd-{}-1-99", std::process::id()));
    let job = dead.join("j1");
    std::fs::create_dir_all(&job).unwrap();
    let sleep = marked_sleep(dir.path(), "leftover");
    let orphan = std::process::Command::new(&sleep).arg("1000").spawn().unwrap();
    let mut orphan = Leftover { child: orphan, dirs: vec![job.clone(), dead.clone()] };
    std::fs::write(job.join("cgroup.procs"), orphan.child.id().to_string()).unwrap();
    let second = Cgroups::detect(dir.path()).unwrap();
    assert!(!dead.exists(), "the dead server's folder is purged");
    let _ = orphan.child.wait();
    assert!(pids_matching(&sleep).is_empty(), "its job was killed");
    assert!(live_folder.exists(), "the live server's folder is untouched");
    drop(second);
    drop(live);
    assert!(!live_folder.exists());
}

/// What the leftovers test made, undone even if it fails.
struct Leftover {
    child: std::process::Child,
    dirs: Vec<PathBuf>,
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
