//! A job is its cgroup: nothing it starts outlives it, whatever process group
//! or session it moves to, and its groups are gone once it is reaped. The
//! jobs library with this host's real cgroups (these tests run as root, as
//! CI does).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{
    Frozen, TempDir, marked_sleep, pids_matching, populated_groups, wait_no_process, wait_until,
};
use rcmd::jobs::{
    Cgroups, Containment, JobId, JobPool, JobSpec, JobStatus, Limits, PoolConfig, StartLimit, Status,
    Termination,
};
use rcmd::limits::{BytesPerSecond, Cpus, Memory, Pids};

struct Contained {
    pool: JobPool,
    cgroups: Arc<Cgroups>,
    dir: TempDir,
}

fn contained(label: &str) -> Contained {
    let dir = TempDir::new(label);
    let cgroups = Arc::new(Cgroups::detect(dir.path()).expect("this host has cgroups (run as root)"));
    let mut config = PoolConfig::new(dir.path().join("data"));
    config.containment = Containment::Cgroups(Arc::clone(&cgroups));
    config.stop_grace = Duration::from_secs(10);
    Contained { pool: JobPool::new(config).expect("pool"), cgroups, dir }
}

impl Contained {
    async fn sh(&self, script: &str) -> JobId {
        self.pool.try_create(JobSpec::new("sh", vec!["-c".into(), script.into()])).await.unwrap()
    }

    /// Job groups left in our folders (not the empty spares kept for
    /// later jobs).
    fn groups_left(&self) -> Vec<PathBuf> {
        let spares = self.cgroups.spare_groups();
        let groups = self.cgroups.folders().iter().flat_map(|f| subdirs(f)).collect::<Vec<_>>();
        groups.into_iter().filter(|g| !spares.contains(g)).collect()
    }

    async fn run_limited(&self, limits: Limits, script: &str) -> JobStatus {
        let spec = JobSpec { limits, ..JobSpec::new("sh", vec!["-c".into(), script.into()]) };
        let id = self.pool.try_create(spec).await.unwrap();
        self.pool.wait(id).await.unwrap()
    }
}

/// Whether the groups in `folder` (of the v2 core) are all spares: kept
/// for later jobs, and empty.
fn only_spares_in(cgroups: &Cgroups, folder: &Path) -> bool {
    let spares = cgroups.spare_groups();
    subdirs(folder)
        .iter()
        .all(|group| spares.contains(group) && read(group, "cgroup.events").contains("populated 0"))
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
#[ignore = "needs root: the jobs library makes its cgroups"]
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
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn processes_that_left_the_group_die_when_the_main_process_exits() {
    let c = contained("contain-exit");
    let sleep = marked_sleep(c.dir.path(), "exit");
    let id = c.sh(&escapees(&sleep, 50)).await;
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert!(pids_matching(&sleep).is_empty(), "all 50 are dead once the job completed");
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
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
                assert_eq!(status.status(), Status::Completed(Termination::Signaled(9)));
            }
            _ => c.pool.delete(id).await.unwrap(),
        }
        assert!(pids_matching(&sleep).is_empty(), "{action}: none is left");
    }
    wait_until("no job group is left", Duration::from_secs(10), || c.groups_left().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_killed_setsid_writer_closes_the_output_so_nothing_is_truncated() {
    // With a cgroup, the writer that left the group dies with the job and its
    // pipe closes at once: the 2 s drain is not needed.
    let c = contained("contain-drain");
    let sleep = marked_sleep(c.dir.path(), "drain");
    let id = c.sh(&setsid_writer(c.dir.path(), &sleep)).await;
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert!(!status.truncated);
    assert_eq!(c.pool.output(id).unwrap().stdout, b"hi\n");
    assert!(pids_matching(&sleep).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_the_drain_gives_up_on_a_setsid_writer_and_marks_the_output_truncated() {
    let dir = TempDir::new("contain-fallback-drain");
    let pool = JobPool::new(PoolConfig::new(dir.path().join("data"))).unwrap();
    let sleep = marked_sleep(dir.path(), "fallback");
    let id = pool
        .try_create(JobSpec::new("sh", vec!["-c".into(), setsid_writer(dir.path(), &sleep)]))
        .await
        .unwrap();
    let status = pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
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
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_job_of_255_processes_stops_entirely() {
    let c = contained("contain-255");
    let sleep = marked_sleep(c.dir.path(), "many");
    let id = c
        .sh(&format!("i=0; while [ $i -lt 254 ]; do {sleep} 1000 & i=$((i+1)); done; echo ready; wait"))
        .await;
    let mut reader = c.pool.reader(id, rcmd::jobs::Stream::Stdout, 0).unwrap();
    assert_eq!(&reader.next_chunk().await.unwrap().unwrap()[..], b"ready\n");
    let status = c.pool.stop_with_grace(id, Duration::ZERO).await.unwrap();
    assert!(matches!(status.status(), Status::Completed(Termination::Signaled(_))), "{status:?}");
    assert!(pids_matching(&sleep).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn no_job_group_is_left_after_a_thousand_jobs_and_the_folders_go_with_the_pool() {
    let c = contained("contain-thousand");
    let mut ids: Vec<JobId> = Vec::new();
    for _ in 0..1000 {
        ids.push(c.pool.try_create(JobSpec::new("true", vec![])).await.unwrap());
    }
    for id in ids {
        let status = c.pool.wait(id).await.unwrap();
        assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
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

/// Grows a string to 200 MiB: past a 64 MiB limit.
const HOG: &str = r#"awk 'BEGIN { s = "x"; while (length(s) < 209715200) s = s s; print length(s) }'"#;

/// Our folder of the hierarchy with `controller`.
fn folder_of(c: &Contained, controller: &str) -> PathBuf {
    let folders = c.cgroups.folders();
    folders.into_iter().find(|f| f.components().any(|part| part.as_os_str() == controller)).unwrap()
}

/// The one spare group in `folder`.
fn spare_in(c: &Contained, folder: &Path) -> PathBuf {
    let spares: Vec<PathBuf> =
        c.cgroups.spare_groups().into_iter().filter(|s| s.starts_with(folder)).collect();
    assert_eq!(spares.len(), 1, "{spares:?}");
    spares[0].clone()
}

fn read(group: &Path, file: &str) -> String {
    std::fs::read_to_string(group.join(file)).unwrap().trim().to_owned()
}

/// Every kept group is kept once, holds no task, counts no pid, holds no
/// tmpfs page, is not frozen and saw no IO.
fn assert_spares_are_as_good_as_new(c: &Contained) {
    let spares = c.cgroups.spare_groups();
    let mut once = spares.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), spares.len(), "a group is kept twice: {spares:?}");
    for spare in &spares {
        if spare.join("blkio.throttle.io_serviced_recursive").exists() {
            let serviced = read(spare, "blkio.throttle.io_serviced_recursive");
            assert!(serviced.ends_with("Total 0"), "{}: {serviced}", spare.display());
        }
        if spare.join("cgroup.events").exists() {
            assert_eq!(read(spare, "cgroup.events"), "populated 0\nfrozen 0", "{}", spare.display());
        } else {
            assert_eq!(read(spare, "tasks"), "", "{} holds a task", spare.display());
        }
        if spare.join("pids.current").exists() {
            assert_eq!(read(spare, "pids.current"), "0", "{}", spare.display());
        }
        if spare.join("memory.stat").exists() {
            assert!(read(spare, "memory.stat").lines().any(|l| l == "shmem 0"), "{}", spare.display());
        }
    }
}

/// A file in /dev/shm, removed when dropped.
struct ShmFile(PathBuf);

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_reused_group_has_only_the_new_jobs_limits_and_counts_nothing_of_the_last_job() {
    let c = contained("contain-reuse");
    let (memory, cpu) = (folder_of(&c, "memory"), folder_of(&c, "cpu"));
    let memory_only = |bytes: u64| Limits { memory: Some(Memory::new(bytes).unwrap()), ..Limits::default() };
    let all = Limits {
        memory: Some(Memory::new(64 << 20).unwrap()),
        cpus: Some(Cpus::new(0.5).unwrap()),
        pids: Some(Pids::new(50).unwrap()),
        io_read_bps: Some(BytesPerSecond::new(1 << 20).unwrap()),
        io_write_bps: Some(BytesPerSecond::new(2 << 20).unwrap()),
    };
    // The shell in the page cache first: reading it from the disk would be
    // IO through the blkio group.
    let warm = c.sh("true").await;
    c.pool.wait(warm).await.unwrap();
    let first = c.run_limited(all, "true").await;
    assert_eq!(first.status(), Status::Completed(Termination::Exited(0)), "{first:?}");
    assert_eq!(
        c.cgroups.spare_groups().len(),
        5,
        "the core, memory, cpu, pids and blkio groups are kept (no IO went through it)"
    );
    assert_spares_are_as_good_as_new(&c);
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
    let (memory_group, cpu_group) = (spare_in(&c, &memory), spare_in(&c, &cpu));

    // The first job blows its memory limit; the next in the same group
    // (it is the only spare) is not reported as OOM-killed, and its peak is
    // its own.
    let hog = c.run_limited(memory_only(64 << 20), HOG).await;
    assert!(hog.oom_killed(), "{hog:?}");
    let small = c.run_limited(memory_only(64 << 20), "grep :memory: /proc/self/cgroup").await;
    assert_eq!(small.status(), Status::Completed(Termination::Exited(0)), "{small:?}");
    let printed = String::from_utf8(c.pool.output(small.id).unwrap().stdout).unwrap();
    let memory_name = memory_group.file_name().unwrap().to_string_lossy().into_owned();
    assert!(printed.trim_end().ends_with(&format!("/{memory_name}")), "it reused {memory_name}: {printed}");
    assert!(!small.oom_killed(), "the last job's OOM kill is not this one's: {small:?}");
    let peak = small.usage().memory_peak.unwrap();
    assert!(peak < 8 << 20, "peak {peak} is this job's, not the last one's 64 MiB");

    // Limits raised past the old ones, then lowered below them.
    let raised = c
        .run_limited(Limits { cpus: Some(Cpus::new(0.25).unwrap()), ..memory_only(256 << 20) }, "true")
        .await;
    assert_eq!(raised.status(), Status::Completed(Termination::Exited(0)), "{raised:?}");
    assert_eq!(read(&memory_group, "memory.limit_in_bytes"), (256u64 << 20).to_string());
    assert_eq!(read(&memory_group, "memory.memsw.limit_in_bytes"), (256u64 << 20).to_string());
    assert_eq!(read(&cpu_group, "cpu.cfs_quota_us"), "25000");
    let lowered = c.run_limited(memory_only(32 << 20), "true").await;
    assert_eq!(lowered.status(), Status::Completed(Termination::Exited(0)), "{lowered:?}");
    assert_eq!(read(&memory_group, "memory.limit_in_bytes"), (32u64 << 20).to_string());
    assert_eq!(read(&memory_group, "memory.memsw.limit_in_bytes"), (32u64 << 20).to_string());

    // A job running as root turns its group's OOM killer off and halves its
    // CPU period: the next job is killed at its limit, not left hanging, and
    // its quota means what it asked.
    let meddle = format!(
        "echo 1 > {}/memory.oom_control && echo 50000 > {}/cpu.cfs_period_us",
        memory_group.display(),
        cpu_group.display()
    );
    let meddler =
        c.run_limited(Limits { cpus: Some(Cpus::new(0.5).unwrap()), ..memory_only(64 << 20) }, &meddle).await;
    assert_eq!(meddler.status(), Status::Completed(Termination::Exited(0)), "{meddler:?}");
    assert_eq!(read(&cpu_group, "cpu.cfs_period_us"), "50000");
    let next = c.run_limited(Limits { cpus: Some(Cpus::new(0.5).unwrap()), ..memory_only(64 << 20) }, HOG);
    let next =
        tokio::time::timeout(Duration::from_secs(60), next).await.expect("the job is not left hanging");
    assert!(next.oom_killed(), "{next:?}");
    assert_eq!(read(&cpu_group, "cpu.cfs_period_us"), "100000");

    // Memory a job leaves charged to its group would be the next job's (in
    // its peak, and against its limit): page cache past a trace, and tmpfs
    // files of any size. Such a group is not kept.
    let file = c.dir.path().join("cached");
    let cache = format!("dd if=/dev/zero of={} bs=1M count=48 conv=fsync status=none", file.display());
    let cached = c.run_limited(memory_only(64 << 20), &cache).await;
    assert_eq!(cached.status(), Status::Completed(Termination::Exited(0)), "{cached:?}");
    assert!(cached.usage().memory_peak.unwrap() >= 40 << 20, "its page cache was charged: {cached:?}");
    assert!(!memory_group.exists(), "the group that holds the page cache is removed");
    let after = c.run_limited(memory_only(64 << 20), "true").await;
    let peak = after.usage().memory_peak.unwrap();
    assert!(peak < 8 << 20, "peak {peak} is this job's, not the last one's page cache");
    let memory_group = spare_in(&c, &memory);
    let shm = ShmFile(PathBuf::from(format!("/dev/shm/rcmdt-reuse-{}", std::process::id())));
    let leave = format!("head -c 524288 /dev/zero > {}", shm.0.display());
    let leaver = c.run_limited(memory_only(64 << 20), &leave).await;
    assert_eq!(leaver.status(), Status::Completed(Termination::Exited(0)), "{leaver:?}");
    assert!(!memory_group.exists(), "the group that holds a tmpfs file is removed");
    assert_spares_are_as_good_as_new(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn limited_jobs_running_at_once_never_share_a_group_and_spares_stay_bounded() {
    let c = contained("contain-reuse-many");
    let limits = Limits {
        memory: Some(Memory::new(64 << 20).unwrap()),
        cpus: Some(Cpus::new(0.5).unwrap()),
        pids: Some(Pids::new(50).unwrap()),
        ..Limits::default()
    };
    const AT_ONCE: usize = 40;
    for wave in 0..3 {
        let go = c.dir.path().join(format!("go-{wave}"));
        // Each job prints its groups, then waits for the others to be up.
        let script = format!("cat /proc/self/cgroup; while [ ! -e {} ]; do :; done", go.display());
        let mut ids = Vec::new();
        for _ in 0..AT_ONCE {
            let spec = JobSpec { limits, ..JobSpec::new("sh", vec!["-c".into(), script.clone()]) };
            ids.push(c.pool.try_create(spec).await.unwrap());
        }
        wait_until("every job of the wave printed its groups", Duration::from_secs(60), || {
            ids.iter().all(|&id| c.pool.output(id).is_ok_and(|o| o.stdout.ends_with(b"\n")))
        });
        let mut groups: Vec<String> = Vec::new();
        for &id in &ids {
            let printed = String::from_utf8(c.pool.output(id).unwrap().stdout).unwrap();
            groups.extend(
                printed
                    .lines()
                    .filter(|l| [":memory:", ":cpu:", ":pids:"].iter().any(|c| l.contains(c)))
                    .map(str::to_owned),
            );
        }
        assert_eq!(groups.len(), 3 * AT_ONCE, "{groups:?}");
        let mut once = groups.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), groups.len(), "two running jobs share a group (wave {wave})");
        std::fs::write(&go, "").unwrap();
        for id in ids {
            let status = c.pool.wait(id).await.unwrap();
            assert_eq!(status.status(), Status::Completed(Termination::Exited(0)), "{status:?}");
        }
    }
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
    for controller in ["memory", "cpu", "pids"] {
        let folder = folder_of(&c, controller);
        let kept = c.cgroups.spare_groups().iter().filter(|s| s.starts_with(&folder)).count();
        assert!((1..=32).contains(&kept), "{kept} {controller} groups kept");
    }
    assert_spares_are_as_good_as_new(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
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
    let limits = rcmd::jobs::Limits { pids: Some(Pids::new(100).unwrap()), ..Default::default() };
    let id =
        c.pool.try_create(JobSpec { limits, ..JobSpec::new("sh", vec!["-c".into(), script]) }).await.unwrap();
    let status = c.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)), "{status:?}");
    assert_eq!(c.pool.output(id).unwrap().stdout, b"ready\n");
    wait_no_process(&sleep);
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
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

/// A pool with its own cgroups (a folder of their own) and data directory,
/// whose starts share `limit` with other pools.
fn contained_with(label: &str, limit: &StartLimit, max_running: usize) -> Contained {
    let dir = TempDir::new(label);
    let cgroups = Arc::new(Cgroups::detect(dir.path()).expect("this host has cgroups (run as root)"));
    let mut config = PoolConfig::new(dir.path().join("data"));
    config.containment = Containment::Cgroups(Arc::clone(&cgroups));
    config.start_limit = limit.clone();
    config.max_running = max_running;
    Contained { pool: JobPool::new(config).expect("pool"), cgroups, dir }
}

/// A `try_create` of `true` in a task of its own, as a request would be.
fn create_true(pool: &Arc<JobPool>) -> tokio::task::JoinHandle<Result<JobId, rcmd::jobs::JobError>> {
    let pool = Arc::clone(pool);
    tokio::spawn(async move { pool.try_create(JobSpec::new("true", vec![])).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn starts_stuck_before_exec_hold_at_most_their_pools_share_and_others_still_start() {
    let limit = StartLimit::default();
    let share = limit.per_pool();
    let stuck = contained_with("contain-cap-stuck", &limit, share + 3);
    let other = contained_with("contain-cap-other", &limit, 10);
    let core = stuck.cgroups.folders()[0].clone();
    let frozen = Frozen::freeze(core.clone());
    let (cgroups, pool) = (Arc::clone(&stuck.cgroups), Arc::new(stuck.pool));
    // A client whose starts all stick: its share is in progress (each stuck
    // in its frozen group), the rest wait for a place and hold no thread.
    // (What follows up to the other client's start takes milliseconds; the
    // starts' watchdog would only end the stuck ones after 5 s.)
    let mut creates: Vec<_> = (0..share).map(|_| create_true(&pool)).collect();
    wait_until("the pool's share is stuck", Duration::from_secs(30), || pool.starts_in_progress() == share);
    // These wait (the last is the one whose caller goes away below).
    creates.extend((0..3).map(|_| create_true(&pool)));
    wait_until("the rest wait", Duration::from_secs(30), || pool.starts_waiting() == 3);
    assert_eq!(pool.starts_in_progress(), share);
    assert_eq!(limit.in_progress(), share, "the server-wide count holds them too");
    // The running quota counts waiting starts: one more is refused at once.
    let refused = pool.try_create(JobSpec::new("true", vec![])).await;
    assert!(matches!(refused, Err(rcmd::jobs::JobError::Quota(_))), "{refused:?}");
    // A caller that stops waiting (a client that disconnects) gives back
    // its unit of the quota and its place in the line.
    let gone = creates.pop().unwrap();
    gone.abort();
    let _ = gone.await;
    wait_until("the cancelled start left the line", Duration::from_secs(30), || pool.starts_waiting() == 2);
    creates.push(create_true(&pool));
    wait_until("its unit of the quota came back", Duration::from_secs(30), || pool.starts_waiting() == 3);
    // Another client's start is not held up by them.
    let id = other.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    let status = other.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert!(populated_groups(&core) <= share, "never more than the share at once");
    assert!(pool.starts_in_progress() <= share);
    drop(frozen);
    for create in creates {
        let id = create.await.unwrap().expect("created");
        // The first ones may have been killed by the watchdog if this took
        // over 5 s; either way each is over.
        pool.wait(id).await.unwrap();
    }
    assert_eq!((pool.starts_in_progress(), pool.starts_waiting(), limit.in_progress()), (0, 0, 0));
    wait_until("no job group is left", Duration::from_secs(10), || only_spares_in(&cgroups, &core));
    drop(cgroups);
}

/// A pool whose one start is stuck before exec, in its frozen folder.
struct StuckStart {
    pool: Arc<JobPool>,
    create: tokio::task::JoinHandle<JobId>,
    /// The program the stuck job runs once it can.
    sleep: String,
    core: PathBuf,
    frozen: Frozen,
    cgroups: Arc<Cgroups>,
    _dir: TempDir,
}

async fn stuck_start(label: &str) -> StuckStart {
    let Contained { pool, cgroups, dir } = contained(label);
    let sleep = marked_sleep(dir.path(), label);
    let core = cgroups.folders()[0].clone();
    let frozen = Frozen::freeze(core.clone());
    let pool = Arc::new(pool);
    let create = {
        let (pool, sleep) = (Arc::clone(&pool), sleep.clone());
        tokio::spawn(async move { pool.try_create(JobSpec::new(sleep, vec!["1000".into()])).await.unwrap() })
    };
    wait_until("the start is stuck in its frozen group", Duration::from_secs(30), || {
        populated_groups(&core) == 1
    });
    StuckStart { pool, create, sleep, core, frozen, cgroups, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn shutdown_waits_for_a_start_stuck_before_exec_and_leaves_nothing_behind() {
    let StuckStart { pool, create, sleep, core, frozen, cgroups, .. } = stuck_start("shutdown-stuck").await;
    // Still frozen: only the start's watchdog can end it, and shutdown
    // waits for that instead of leaving it behind.
    pool.shutdown().await;
    assert_eq!(populated_groups(&core), 0, "no process is left in a job group");
    assert_eq!(pool.starts_in_progress(), 0);
    let id = create.await.unwrap();
    let status = pool.status(id).unwrap();
    let Status::Error(message) = &status.status() else { panic!("{status:?}") };
    assert!(message.contains("stopped before it could run the program"), "{message}");
    drop(frozen);
    assert!(pids_matching(&sleep).is_empty());
    wait_until("no job group is left", Duration::from_secs(10), || only_spares_in(&cgroups, &core));
    // Nothing starts after a shutdown.
    let late = pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    let Status::Error(message) = pool.status(late).unwrap().status() else { panic!("a late job started") };
    assert!(message.contains("shutting down"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_job_that_starts_while_its_pool_shuts_down_is_killed_and_its_group_removed() {
    let StuckStart { pool, create, sleep, core, frozen, cgroups, .. } = stuck_start("shutdown-late").await;
    let shutdown = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move { pool.shutdown().await })
    };
    // The start goes on and its program runs, during the shutdown.
    drop(frozen);
    shutdown.await.unwrap();
    assert!(pids_matching(&sleep).is_empty(), "the job was killed before shutdown returned");
    let id = create.await.unwrap();
    let status = pool.status(id).unwrap();
    assert!(status.finished_at().is_some(), "its end is recorded: {status:?}");
    assert!(matches!(status.status(), Status::Error(_)), "{status:?}");
    wait_until("no job group is left", Duration::from_secs(10), || only_spares_in(&cgroups, &core));
}

/// The name of the job's v2 core group, then a script's own lines.
const PRINT_CORE: &str = "sed -n 's|^0::.*/||p' /proc/self/cgroup";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_reused_core_group_counts_only_the_new_jobs_cpu_and_a_frozen_or_threaded_one_is_not_kept() {
    let c = contained("contain-core-reuse");
    let core = c.cgroups.folders()[0].clone();
    // A job that burns 200 ms of CPU by its own group's count.
    let busy = format!(
        "j=$({PRINT_CORE}); while [ $(sed -n 's/^usage_usec //p' {core}/$j/cpu.stat) -lt 200000 ]; do :; done; echo $j",
        core = core.display()
    );
    let first = c.sh(&busy).await;
    let first_status = c.pool.wait(first).await.unwrap();
    assert_eq!(first_status.status(), Status::Completed(Termination::Exited(0)), "{first_status:?}");
    assert!(first_status.usage().cpu_ms.unwrap() >= 200, "{first_status:?}");
    let name = String::from_utf8(c.pool.output(first).unwrap().stdout).unwrap().trim().to_owned();
    let group = core.join(&name);
    assert_eq!(spare_in(&c, &core), group, "the emptied core group is kept");
    assert_spares_are_as_good_as_new(&c);

    // The next job gets it, and counts only its own CPU time.
    let second = c.sh(PRINT_CORE).await;
    let second_status = c.pool.wait(second).await.unwrap();
    assert_eq!(c.pool.output(second).unwrap().stdout, format!("{name}\n").as_bytes(), "the same group");
    assert!(second_status.usage().cpu_ms.unwrap() < 100, "{second_status:?}");

    // A job running as root freezes its own group and is killed frozen: the
    // group would freeze the next job, so it is not kept.
    let freezer = c.sh(&format!("echo 1 > {}/cgroup.freeze; echo unreachable", group.display())).await;
    wait_until("the job froze its group", Duration::from_secs(30), || {
        read(&group, "cgroup.events").contains("frozen 1")
    });
    let frozen = c.pool.stop(freezer).await.unwrap();
    assert!(matches!(frozen.status(), Status::Completed(Termination::Signaled(_))), "{frozen:?}");
    assert!(!c.cgroups.spare_groups().contains(&group), "a frozen group is not kept");
    assert!(!group.exists(), "it is removed");
    let next = c.sh("echo fine").await;
    let next_status = tokio::time::timeout(Duration::from_secs(30), c.pool.wait(next)).await;
    let next_status = next_status.expect("the next job is not frozen").unwrap();
    assert_eq!(next_status.status(), Status::Completed(Termination::Exited(0)), "{next_status:?}");

    // A job running as root leaves its group (for the test's own, where it
    // ends) and makes it threaded: cgroup.kill fails there, and no other
    // group of the folder could be joined while it exists. Not kept.
    let own = core.parent().unwrap();
    let script = format!(
        "j=$({PRINT_CORE}); echo $$ > {own}/cgroup.procs && echo threaded > {core}/$j/cgroup.type && cat {core}/$j/cgroup.type && echo $j",
        own = own.display(),
        core = core.display()
    );
    let threader = c.sh(&script).await;
    let threaded = c.pool.wait(threader).await.unwrap();
    assert_eq!(threaded.status(), Status::Completed(Termination::Exited(0)), "{threaded:?}");
    let out = String::from_utf8(c.pool.output(threader).unwrap().stdout).unwrap();
    let (kind, name) = out.trim().split_once('\n').unwrap();
    assert_eq!(kind, "threaded");
    assert!(!core.join(name).exists(), "the threaded group is removed");
    let after = c.sh("echo fine").await;
    let after_status = c.pool.wait(after).await.unwrap();
    assert_eq!(after_status.status(), Status::Completed(Termination::Exited(0)), "{after_status:?}");
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_core_group_given_to_the_next_job_is_never_killed_by_the_job_that_gave_it() {
    let c = contained("contain-core-given");
    let (core, pids) = (c.cgroups.folders()[0].clone(), folder_of(&c, "pids"));
    // A process of the test's own, outside every job.
    let outsider_sleep = marked_sleep(c.dir.path(), "outsider");
    let outsider = std::process::Command::new(&outsider_sleep).arg("1000").spawn().unwrap();
    let outsider = Leftover { child: outsider, dirs: Vec::new() };
    // A job running as root puts it in a group below its own pids group and
    // exits: its core group empties and is kept, but its pids group cannot
    // be removed, so its end keeps trying (and killing) for a while.
    let script = format!(
        "p=$(sed -n 's|^[0-9]*:pids:.*/||p' /proc/self/cgroup); mkdir {pids}/$p/sub && echo {pid} > {pids}/$p/sub/cgroup.procs && {PRINT_CORE}",
        pids = pids.display(),
        pid = outsider.child.id()
    );
    let limits = Limits { pids: Some(Pids::new(100).unwrap()), ..Limits::default() };
    let giver =
        c.pool.try_create(JobSpec { limits, ..JobSpec::new("sh", vec!["-c".into(), script]) }).await.unwrap();
    wait_until("the giver's core group is kept", Duration::from_secs(30), || {
        c.cgroups.spare_groups().iter().any(|s| s.starts_with(&core))
    });
    // The next job takes it and runs on.
    let sleep = marked_sleep(c.dir.path(), "taker");
    let taker = c.sh(&format!("{PRINT_CORE}; exec {sleep} 1000")).await;
    wait_until("the taker runs", Duration::from_secs(30), || !pids_matching(&sleep).is_empty());
    assert!(c.pool.status(giver).unwrap().finished_at().is_none(), "the giver's end is still retrying");
    let given = c.pool.wait(giver).await.unwrap();
    assert_eq!(given.status(), Status::Completed(Termination::Exited(0)), "{given:?}");
    assert_eq!(c.pool.output(giver).unwrap().stdout, c.pool.output(taker).unwrap().stdout, "the same group");
    assert!(!pids_matching(&sleep).is_empty(), "the giver's end did not kill the taker");
    assert!(c.pool.status(taker).unwrap().finished_at().is_none());
    drop(outsider);
    let taken = c.pool.stop(taker).await.unwrap();
    assert!(matches!(taken.status(), Status::Completed(Termination::Signaled(_))), "{taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the jobs library makes its cgroups"]
async fn a_blkio_group_is_kept_only_if_no_io_went_through_it_and_a_reused_one_has_only_the_new_rules() {
    let c = contained("contain-blkio");
    let blkio = folder_of(&c, "blkio");
    let reads =
        |bps: u64| Limits { io_read_bps: Some(BytesPerSecond::new(bps).unwrap()), ..Limits::default() };
    // Only shell builtins, run once without limits first so that all of the
    // shell they need is in the page cache: reading it from the disk would
    // be IO through the group.
    let print_rules = format!(
        "while read -r line; do case $line in *:blkio:*) b=${{line##*/}};; esac; done < /proc/self/cgroup; echo $b; \
         for f in read write; do read -r rule < {blkio}/$b/blkio.throttle.${{f}}_bps_device && echo \"$rule\"; done; :",
        blkio = blkio.display()
    );
    let warm = c.sh(&print_rules).await;
    c.pool.wait(warm).await.unwrap();
    let first = c.run_limited(reads(1 << 20), &print_rules).await;
    assert_eq!(first.status(), Status::Completed(Termination::Exited(0)), "{first:?}");
    let group = spare_in(&c, &blkio);
    let out = String::from_utf8(c.pool.output(first.id).unwrap().stdout).unwrap();
    assert!(out.starts_with(&format!("{}\n", group.file_name().unwrap().to_string_lossy())), "{out}");
    assert!(out.contains(" 1048576"), "{out}");

    // The next job, with only a write limit, has no read rule left over.
    let writes = Limits { io_write_bps: Some(BytesPerSecond::new(2 << 20).unwrap()), ..Limits::default() };
    let second = c.run_limited(writes, &print_rules).await;
    let out = String::from_utf8(c.pool.output(second.id).unwrap().stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "the same group, one rule: {out}");
    assert_eq!(lines[0], group.file_name().unwrap().to_string_lossy());
    assert!(lines[1].ends_with(" 2097152"), "{out}");

    // A job that reads from the disk (direct IO, so it goes through the
    // throttle): IO it queued could hold up the next job, so its group is
    // not kept.
    // The file on the disk and dd in the page cache first, so that the
    // direct read is the only IO.
    let file = c.dir.path().join("read-me");
    let mut written = std::fs::File::create(&file).unwrap();
    std::io::Write::write_all(&mut written, &vec![7u8; 64 << 10]).unwrap();
    written.sync_all().unwrap();
    let read_file = format!("dd if={} of=/dev/null bs=64k count=1 iflag=direct status=none", file.display());
    let warm = c.sh(&read_file).await;
    c.pool.wait(warm).await.unwrap();
    let reader = c.run_limited(reads(1 << 20), &read_file).await;
    assert_eq!(reader.status(), Status::Completed(Termination::Exited(0)), "{reader:?}");
    assert!(!group.exists(), "the group IO went through is removed");
    assert!(!c.cgroups.spare_groups().iter().any(|s| s.starts_with(&blkio)));
    assert_spares_are_as_good_as_new(&c);
    assert!(c.groups_left().is_empty(), "{:?}", c.groups_left());
}
