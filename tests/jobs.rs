//! The job pool library, with real processes and real spool files.

use std::sync::Arc;
use std::time::Duration;

use crate::util::TempDir;
use rcmd::jobs::{
    Containment, GroupWatcher, JobError, JobId, JobPool, JobSpec, PoolConfig, Quota, Status, Stream,
    Termination,
};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn sh(script: &str) -> (String, Vec<String>) {
    ("sh".into(), args(&["-c", script]))
}

struct Fixture {
    pool: JobPool,
    dir: TempDir,
}

fn pool_with(label: &str, configure: impl FnOnce(&mut PoolConfig)) -> Fixture {
    let dir = TempDir::new(label);
    let mut config = PoolConfig::new(dir.path().join("data"));
    configure(&mut config);
    Fixture { pool: JobPool::new(config).expect("pool"), dir }
}

fn pool(label: &str) -> Fixture {
    pool_with(label, |_| {})
}

/// Where a pool made with `JobPool::new` keeps its jobs' output files.
fn output_dir(data: &std::path::Path) -> std::path::PathBuf {
    data.join("output").join("-")
}

impl Fixture {
    fn output_dir(&self) -> std::path::PathBuf {
        output_dir(&self.dir.path().join("data"))
    }

    async fn run(&self, (cmd, args): (String, Vec<String>)) -> JobId {
        self.pool.try_create(JobSpec::new(cmd, args)).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_zero_and_non_zero_are_reported() {
    let f = pool("exit");
    let ok = f.run(sh("exit 0")).await;
    let three = f.run(sh("exit 3")).await;
    assert_eq!(f.pool.wait(ok).await.unwrap().status(), Status::Completed(Termination::Exited(0)));
    let status = f.pool.wait(three).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(3)));
    assert!(status.pid().is_some());
    assert!(status.finished_at().unwrap() >= status.started_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_running_while_the_process_runs() {
    let f = pool("running");
    let id = f.run(("sleep".into(), args(&["30"]))).await;
    let status = f.pool.status(id).unwrap();
    assert_eq!(status.status(), Status::Running);
    assert!(status.finished_at().is_none());
    assert_eq!(status.command, "sleep");
    assert_eq!(status.args, args(&["30"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_from_outside_reports_the_signal() {
    let f = pool("outside-kill");
    let id = f.run(("sleep".into(), args(&["30"]))).await;
    let pid = f.pool.status(id).unwrap().pid().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let status = f.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Signaled(9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_cannot_start_are_jobs_in_the_error_state() {
    let f = pool("start-errors");
    let not_executable = f.dir.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\necho hi\n").unwrap();
    let cases = [
        ("/no/such/command".to_string(), vec![], "No such file"),
        (not_executable.to_str().unwrap().to_string(), vec![], "Permission denied"),
        (String::new(), vec![], "empty"),
        ("echo".to_string(), vec!["a\0b".to_string()], "nul byte"),
    ];
    for (cmd, cmd_args, expected) in cases {
        let id = f.pool.try_create(JobSpec::new(cmd.clone(), cmd_args)).await.unwrap();
        let status = f.pool.status(id).unwrap();
        match &status.status() {
            Status::Error(message) => {
                assert!(message.contains(expected), "{cmd:?}: {message:?} lacks {expected:?}")
            }
            other => panic!("{cmd:?} should be an error, is {other:?}"),
        }
        assert_eq!(status.pid(), None);
        assert!(status.finished_at().is_some());
        let output = f.pool.output(id).unwrap();
        assert!(output.stdout.is_empty() && output.stderr.is_empty());
        assert!(f.pool.reader(id, Stream::Stdout, 0).unwrap().read_to_end().await.unwrap().is_empty());
        f.pool.delete(id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_a_typed_error_on_every_call() {
    let f = pool("unknown");
    let id = JobId(99);
    assert!(matches!(f.pool.status(id), Err(JobError::NotFound(JobId(99)))));
    assert!(matches!(f.pool.output(id), Err(JobError::NotFound(_))));
    assert!(matches!(f.pool.reader(id, Stream::Stderr, 0), Err(JobError::NotFound(_))));
    assert!(matches!(f.pool.wait(id).await, Err(JobError::NotFound(_))));
    assert!(matches!(f.pool.stop(id).await, Err(JobError::NotFound(_))));
    assert!(matches!(f.pool.delete(id).await, Err(JobError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_count_from_one() {
    let f = pool("ids");
    assert_eq!(f.run(sh("true")).await, JobId(1));
    assert_eq!(f.run(sh("true")).await, JobId(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_stay_separate_and_binary_safe() {
    let f = pool("binary");
    // Every byte value, 0 to 255, on stdout; a different text on stderr.
    let id = f.run(sh(
        "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done; printf 'to stderr' >&2",
    )).await;
    f.pool.wait(id).await.unwrap();
    let output = f.pool.output(id).unwrap();
    assert_eq!(output.stdout, (0..=255u8).collect::<Vec<_>>());
    assert_eq!(output.stderr, b"to stderr");
    assert!(!output.truncated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_never_blocks_on_output_nobody_reads() {
    let f = pool("unread");
    // 8 MiB is far more than a pipe holds; no reader exists while it runs.
    let id = f.run(sh("head -c 8388608 /dev/zero; head -c 8388608 /dev/zero >&2")).await;
    let status = f.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    let output = f.pool.output(id).unwrap();
    assert_eq!((output.stdout.len(), output.stderr.len()), (8 << 20, 8 << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_complete_and_exact() {
    let f = pool("huge");
    const SIZE: u64 = 120 << 20;
    let id = f.run(sh(&format!("yes 0123456789abcde | head -c {SIZE}"))).await;
    // Follow it live, checking every byte without holding it all.
    let mut reader = f.pool.reader(id, Stream::Stdout, 0).unwrap();
    let pattern = b"0123456789abcde\n";
    let mut offset = 0u64;
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        for (i, byte) in chunk.iter().enumerate() {
            assert_eq!(*byte, pattern[((offset + i as u64) % 16) as usize], "byte {}", offset + i as u64);
        }
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, SIZE);
    assert_eq!(f.pool.status(id).unwrap().status(), Status::Completed(Termination::Exited(0)));
    let spool = std::fs::metadata(f.output_dir().join(format!("{id}.stdout"))).unwrap();
    assert_eq!(spool.len(), SIZE, "output lives in the spool file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_past_the_cap_is_dropped_and_marked_truncated() {
    let f = pool_with("cap", |c| c.output_limit = 1000);
    let id = f.run(sh("head -c 100000 /dev/zero; echo done >&2; exit 7")).await;
    let status = f.pool.wait(id).await.unwrap();
    // The job ran to its own end, unharmed by the cap (no SIGPIPE).
    assert_eq!(status.status(), Status::Completed(Termination::Exited(7)));
    assert!(status.truncated);
    let output = f.pool.output(id).unwrap();
    assert_eq!(output.stdout.len() + output.stderr.len(), 1000);
    assert!(output.truncated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_under_the_cap_is_not_truncated() {
    let f = pool_with("under-cap", |c| c.output_limit = 1000);
    let id = f.run(sh("head -c 1000 /dev/zero")).await;
    assert!(!f.pool.wait(id).await.unwrap().truncated);
    assert_eq!(f.pool.output(id).unwrap().stdout.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_when_the_main_process_exits_even_if_a_child_holds_the_pipe() {
    let f = pool("grandchild");
    let sleep = crate::util::marked_sleep(f.dir.path(), "grandchild");
    let id = f.run(sh(&format!("{sleep} 1000 & echo hi"))).await;
    let status = f.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert_eq!(f.pool.output(id).unwrap().stdout, b"hi\n");
    crate::util::wait_no_process(&sleep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_dev_null() {
    let f = pool("stdin");
    let id = f.run(("cat".into(), vec![])).await;
    let status = f.pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert!(f.pool.output(id).unwrap().stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_leads_its_own_process_group() {
    let f = pool("pgid");
    let id = f.run(sh("ps -o pgid= -p $$; echo $$")).await;
    f.pool.wait(id).await.unwrap();
    let stdout = String::from_utf8(f.pool.output(id).unwrap().stdout).unwrap();
    let mut lines = stdout.split_whitespace();
    assert_eq!(lines.next(), lines.next(), "pgid equals the job's pid");
    assert_ne!(
        nix::unistd::getpgrp().as_raw().to_string(),
        f.pool.status(id).unwrap().pid().unwrap().to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_followers_see_identical_complete_bytes() {
    let f = pool("followers");
    let id = f.run(sh("i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); sleep 0.005; done")).await;
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    let followers: Vec<_> = (0..5)
        .map(|_| {
            let reader = f.pool.reader(id, Stream::Stdout, 0).unwrap();
            tokio::spawn(reader.read_to_end())
        })
        .collect();
    for follower in followers {
        assert_eq!(String::from_utf8(follower.await.unwrap().unwrap()).unwrap(), expected);
    }
    // One that starts after the last byte gets the same.
    let late = f.pool.reader(id, Stream::Stdout, 0).unwrap().read_to_end().await.unwrap();
    assert_eq!(String::from_utf8(late).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_from_an_offset_yields_exactly_the_remainder() {
    let f = pool("offset");
    let id = f.run(sh("printf 0123456789; sleep 0.05; printf abcdef")).await;
    let reader = f.pool.reader(id, Stream::Stdout, 4).unwrap();
    assert_eq!(reader.offset(), 4);
    assert_eq!(reader.read_to_end().await.unwrap(), b"456789abcdef");
    let past_the_end = f.pool.reader(id, Stream::Stdout, 1000).unwrap();
    assert!(past_the_end.read_to_end().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_to_the_group() {
    let f = pool("stop");
    let sleep = crate::util::marked_sleep(f.dir.path(), "stop");
    let id = f.run(sh(&format!("{sleep} 1000 & {sleep} 1000"))).await;
    crate::util::wait_until("both sleeps run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 2
    });
    let status = f.pool.stop(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Signaled(15)));
    crate::util::wait_no_process(&sleep);
    // The record stays.
    assert_eq!(f.pool.status(id).unwrap().status(), Status::Completed(Termination::Signaled(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill_after_the_grace_period() {
    let f = pool_with("stop-grace", |c| c.stop_grace = Duration::from_millis(200));
    // Ignoring SIGTERM is inherited by the sleeps it starts.
    let id = f.run(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done")).await;
    f.pool.reader(id, Stream::Stdout, 0).unwrap().next_chunk().await.unwrap();
    let status = f.pool.stop(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Signaled(9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_without_grace_kills_at_once() {
    let f = pool("stop-now");
    let id = f.run(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done")).await;
    f.pool.reader(id, Stream::Stdout, 0).unwrap().next_chunk().await.unwrap();
    let status = f.pool.stop_with_grace(id, Duration::ZERO).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Signaled(9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_a_finished_job_changes_nothing() {
    let f = pool("stop-finished");
    let id = f.run(sh("exit 4")).await;
    f.pool.wait(id).await.unwrap();
    let status = f.pool.stop(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_a_running_job_kills_its_group_and_removes_its_output() {
    let f = pool("delete-running");
    let sleep = crate::util::marked_sleep(f.dir.path(), "delete");
    let id = f.run(sh(&format!("echo started; {sleep} 1000 & {sleep} 1000"))).await;
    crate::util::wait_until("both sleeps run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 2
    });
    f.pool.delete(id).await.unwrap();
    assert!(matches!(f.pool.status(id), Err(JobError::NotFound(_))));
    crate::util::wait_no_process(&sleep);
    assert_eq!(std::fs::read_dir(f.output_dir()).unwrap().count(), 0, "spool files removed");
    assert!(matches!(f.pool.delete(id).await, Err(JobError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_a_finished_job_removes_it() {
    let f = pool("delete-finished");
    let id = f.run(sh("echo hi")).await;
    f.pool.wait(id).await.unwrap();
    f.pool.delete(id).await.unwrap();
    assert!(matches!(f.pool.output(id), Err(JobError::NotFound(_))));
    assert_eq!(std::fs::read_dir(f.output_dir()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_of_a_deleted_job_ends_with_what_was_written() {
    let f = pool("delete-follow");
    let id = f.run(sh("echo first; sleep 1000")).await;
    let mut reader = f.pool.reader(id, Stream::Stdout, 0).unwrap();
    assert_eq!(&reader.next_chunk().await.unwrap().unwrap()[..], b"first\n");
    f.pool.delete(id).await.unwrap();
    assert!(reader.next_chunk().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_every_job_and_its_children_and_marks_them_lost() {
    let f = pool("shutdown");
    let sleep = crate::util::marked_sleep(f.dir.path(), "shutdown");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(f.run(sh(&format!("{sleep} 1000 & {sleep} 1000"))).await);
    }
    crate::util::wait_until("all sleeps run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 10
    });
    f.pool.shutdown().await;
    for id in ids {
        let status = f.pool.status(id).unwrap();
        assert!(
            status.lost() && matches!(&status.status(), Status::Error(m) if m.starts_with("lost:")),
            "{status:?}"
        );
    }
    crate::util::wait_no_process(&sleep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_pool_kills_every_job_and_its_children() {
    let f = pool("drop");
    let sleep = crate::util::marked_sleep(f.dir.path(), "drop");
    let mut pids: Vec<u32> = Vec::new();
    for _ in 0..3 {
        let id = f.run(sh(&format!("{sleep} 1000 & {sleep} 1000"))).await;
        pids.push(f.pool.status(id).unwrap().pid().unwrap());
    }
    crate::util::wait_until("all sleeps run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 6
    });
    drop(f.pool);
    // Reaped synchronously by the drop: the leaders are gone at once.
    assert!(pids.iter().all(|pid| !crate::util::is_alive(*pid)));
    crate::util::wait_no_process(&sleep);
}

#[test]
fn many_threads_create_and_query_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = TempDir::new("threads");
    let pool = {
        let _guard = runtime.enter();
        Arc::new(JobPool::new(PoolConfig::new(dir.path().join("data"))).unwrap())
    };
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let runtime = runtime.handle().clone();
            std::thread::spawn(move || {
                let ids: Vec<_> = (0..200)
                    .map(|i| {
                        (
                            i,
                            runtime
                                .block_on(pool.try_create(JobSpec::new(
                                    "sh",
                                    args(&["-c", &format!("echo {t}-{i}; echo e{i} >&2; exit {}", i % 5)]),
                                )))
                                .unwrap(),
                        )
                    })
                    .collect();
                for (_, id) in &ids {
                    // Querying while the other threads create.
                    pool.status(*id).unwrap();
                }
                ids
            })
        })
        .collect();
    let all: Vec<_> = threads.into_iter().enumerate().map(|(t, h)| (t, h.join().unwrap())).collect();
    runtime.block_on(async {
        for (t, ids) in &all {
            for (i, id) in ids {
                let status = pool.wait(*id).await.unwrap();
                assert_eq!(status.status(), Status::Completed(Termination::Exited(i % 5)));
                let output = pool.output(*id).unwrap();
                assert_eq!(output.stdout, format!("{t}-{i}\n").into_bytes());
                assert_eq!(output.stderr, format!("e{i}\n").into_bytes());
            }
        }
    });
    let mut ids: Vec<u64> = all.iter().flat_map(|(_, ids)| ids.iter().map(|(_, id)| id.0)).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=1600).collect::<Vec<_>>(), "every id given exactly once");
    assert_eq!(pool.list().unwrap().len(), 1600);
    drop(pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pool_answers_for_the_last_ones_jobs_and_never_reuses_an_id() {
    let dir = TempDir::new("reopen");
    let data = dir.path().join("data");
    let pool = JobPool::new(PoolConfig::new(&data)).unwrap();
    let done =
        pool.try_create(JobSpec::new("sh", args(&["-c", "echo out; echo err >&2; exit 3"]))).await.unwrap();
    let gone = pool.try_create(JobSpec::new("sh", args(&["-c", "echo bye"]))).await.unwrap();
    pool.wait(done).await.unwrap();
    pool.wait(gone).await.unwrap();
    pool.delete(gone).await.unwrap();
    let running = pool.try_create(JobSpec::new("sleep", args(&["1000"]))).await.unwrap();
    let pid = pool.status(running).unwrap().pid().unwrap();
    // While it holds the directory, nobody else may open it.
    let Err(JobError::DataDir(refused)) = JobPool::new(PoolConfig::new(&data)) else {
        panic!("opened twice")
    };
    assert!(refused.to_string().contains(&format!("is in use by pid {}", std::process::id())), "{refused}");
    drop(pool);
    assert!(!crate::util::is_alive(pid));

    let pool = JobPool::new(PoolConfig::new(&data)).unwrap();
    let status = pool.status(done).unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(3)));
    assert_eq!((status.command.as_str(), status.args.len()), ("sh", 2));
    let output = pool.output(done).unwrap();
    assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    let followed = pool.reader(done, Stream::Stdout, 0).unwrap().read_to_end().await.unwrap();
    assert_eq!(followed, b"out\n");
    assert!(matches!(pool.status(gone), Err(JobError::NotFound(_))));
    let lost = pool.wait(running).await.unwrap();
    assert!(lost.lost());
    assert!(matches!(&lost.status(), Status::Error(m) if m.starts_with("lost:")), "{:?}", lost.status());
    let listed: Vec<JobId> = pool.list().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(listed, [done, running]);
    let next = pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    assert!(next > running, "{next} after {running}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_spool_file_is_an_error_not_an_empty_output() {
    let f = pool("missing-spool");
    let id = f.run(sh("echo important")).await;
    f.pool.wait(id).await.unwrap();
    std::fs::remove_file(f.output_dir().join(format!("{id}.stdout"))).unwrap();
    assert!(matches!(f.pool.output(id), Err(JobError::ReadOutput { .. })));
    assert!(matches!(f.pool.reader(id, Stream::Stdout, 0), Err(JobError::ReadOutput { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_replaced_by_a_symlink_is_not_followed() {
    let f = pool("symlink-spool");
    let secret = f.dir.path().join("secret");
    std::fs::write(&secret, "not yours").unwrap();
    let id = f.run(sh("echo mine")).await;
    f.pool.wait(id).await.unwrap();
    let spool = f.output_dir().join(format!("{id}.stdout"));
    std::fs::remove_file(&spool).unwrap();
    std::os::unix::fs::symlink(&secret, &spool).unwrap();
    assert!(matches!(f.pool.output(id), Err(JobError::ReadOutput { .. })));
    // Nor is one planted where the next job's output goes: it is not written through.
    let next = JobId(id.0 + 1);
    std::os::unix::fs::symlink(&secret, f.output_dir().join(format!("{next}.stdout"))).unwrap();
    assert_eq!(f.run(sh("echo overwrite")).await, next);
    let status = f.pool.wait(next).await.unwrap();
    assert!(status.truncated && status.output_error.is_some(), "{status:?}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "not yours");
}

#[test]
fn a_pool_outside_a_runtime_is_a_clear_error() {
    let dir = TempDir::new("no-runtime");
    assert!(matches!(JobPool::new(PoolConfig::new(dir.path())), Err(JobError::NoRuntime)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_create_refuses_past_the_running_quota_until_a_job_ends() {
    let f = pool_with("quota-running", |c| c.max_running = 2);
    let a = f.pool.try_create(JobSpec::new("sleep", args(&["30"]))).await.unwrap();
    f.pool.try_create(JobSpec::new("sleep", args(&["30"]))).await.unwrap();
    let err = f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap_err();
    assert!(matches!(err, JobError::Quota(Quota::Running(2))), "{err}");
    assert!(err.to_string().contains("stop one"));
    f.pool.stop_with_grace(a, Duration::ZERO).await.unwrap();
    // A job that cannot start never counts as running: the place it took
    // is free again for the next.
    f.pool.try_create(JobSpec::new("/no/such/command", vec![])).await.unwrap();
    f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_create_refuses_past_the_kept_jobs_quota_until_one_is_deleted() {
    let f = pool_with("quota-jobs", |c| c.max_jobs = 2);
    let a = f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    let err = f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap_err();
    assert!(matches!(err, JobError::Quota(Quota::Jobs(2))), "{err}");
    assert!(err.to_string().contains("delete finished jobs"));
    f.pool.delete(a).await.unwrap();
    f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_bytes_quota_truncates_and_then_refuses() {
    let f = pool_with("quota-bytes", |c| c.max_stored_bytes = 10_000);
    let a = f.pool.try_create(JobSpec::new("head", args(&["-c", "6000", "/dev/zero"]))).await.unwrap();
    assert!(!f.pool.wait(a).await.unwrap().truncated);
    let b = f.pool.try_create(JobSpec::new("head", args(&["-c", "6000", "/dev/zero"]))).await.unwrap();
    let status = f.pool.wait(b).await.unwrap();
    assert!(status.truncated);
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert_eq!(f.pool.output(b).unwrap().stdout.len(), 4000, "cut at the pool's quota");
    let err = f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap_err();
    assert!(matches!(err, JobError::Quota(Quota::StoredBytes(10_000))), "{err}");
    f.pool.delete(a).await.unwrap();
    f.pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
}

#[derive(Debug, Default)]
struct RecordingWatcher(std::sync::Mutex<Vec<(bool, u32)>>);

impl GroupWatcher for RecordingWatcher {
    fn started(&self, pgid: u32) {
        self.0.lock().unwrap().push((true, pgid));
    }
    fn reaping(&self, pgid: u32) {
        self.0.lock().unwrap().push((false, pgid));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_hears_of_each_group_started_and_reaped() {
    let watcher = Arc::new(RecordingWatcher::default());
    let f = pool_with("watcher", |c| c.containment = Containment::Guard(watcher.clone()));
    let id = f.run(sh("exit 0")).await;
    let pid = f.pool.wait(id).await.unwrap().pid().unwrap();
    f.pool.try_create(JobSpec::new("/no/such/command", vec![])).await.unwrap();
    assert_eq!(*watcher.0.lock().unwrap(), vec![(true, pid), (false, pid)]);
}
