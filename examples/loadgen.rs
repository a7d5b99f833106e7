//! The load generator behind `bench/run.sh` (not a test). Each subcommand
//! measures one thing and prints one line of `name=value` pairs that the
//! script turns into BENCHMARKS.md rows.
//!
//! ```text
//! loadgen latency RUNS CMD [ARGS...]          wall time of a command, RUNS times
//! loadgen spawn THREADS SECONDS               raw spawn-and-wait of /bin/true
//! loadgen throughput CERTS ADDR CLIENTS SECONDS   create /bin/true jobs and wait for each
//! loadgen fill CERTS ADDR COUNT CMD [ARGS...] create COUNT jobs, wait for them unless they run on
//! loadgen status CERTS ADDR CLIENTS SECONDS MAX_ID  GET status of ids 1..=MAX_ID
//! loadgen stamps                              stdin lines of `date +%s%N`: delay until read
//! loadgen completions CERTS ADDR COUNT CLIENTS   `echo rcmd-job-N` jobs; prints `done ID N` once
//!                                             each is seen finished, stops at the first failure
//! loadgen verify CERTS ADDR FILE              each `done ID N` line: still completed, output intact
//! ```

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcmd::testing::{ClientDir, raw_spawn_rate};

fn client(certs: &Path) -> reqwest::Client {
    let mut tls = ClientDir::at(certs).rustls_config();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    // reqwest is built without a crypto provider of its own: make this one the process's.
    let _ = tls.crypto_provider().as_ref().clone().install_default();
    reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
}

/// Percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name} n={} median={:.3} p10={:.3} p90={:.3} p99={:.3} min={:.3} max={:.3}",
        values.len(),
        pct(&values, 0.5),
        pct(&values, 0.1),
        pct(&values, 0.9),
        pct(&values, 0.99),
        values[0],
        values[values.len() - 1]
    );
}

fn latency(runs: usize, command: &[String]) {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{command:?} failed");
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    summary("latency_ms", ms);
}

fn spawn(threads: usize, seconds: f64) {
    let rate = raw_spawn_rate(threads, Duration::from_secs_f64(seconds));
    println!("spawn threads={threads} per_second={rate:.0}");
}

async fn create(client: &reqwest::Client, base: &str, cmd: &[String]) -> u64 {
    let body = serde_json::json!({"cmd": cmd[0], "args": &cmd[1..]});
    let response = client.put(format!("{base}/jobs")).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "create: {}", response.status());
    response.json::<serde_json::Value>().await.unwrap()["id"].as_u64().unwrap()
}

async fn wait(client: &reqwest::Client, base: &str, id: u64) {
    let response = client.get(format!("{base}/jobs/{id}/status?wait=true")).send().await.unwrap();
    assert!(response.status().is_success());
    response.bytes().await.unwrap();
}

async fn throughput(certs: &Path, base: String, clients: usize, seconds: f64) {
    let round = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base) = (client(certs), base.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                let cmd = vec!["/bin/true".to_owned()];
                while started.elapsed() < round {
                    let id = create(&client, &base, &cmd).await;
                    wait(&client, &base, id).await;
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
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    println!("throughput clients={clients} per_second={per_second:.0} count={total}");
}

async fn fill(certs: &Path, base: String, count: usize, cmd: Vec<String>) {
    let client = client(certs);
    let started = Instant::now();
    let mut ids = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(64) {
        let batch = (chunk * 64..count.min(chunk * 64 + 64)).map(|_| create(&client, &base, &cmd));
        ids.extend(futures_util::future::join_all(batch).await);
    }
    if cmd[0] != "sleep" {
        for id in &ids {
            wait(&client, &base, *id).await;
        }
    }
    println!("fill count={count} seconds={:.2}", started.elapsed().as_secs_f64());
}

async fn status(certs: &Path, base: String, clients: usize, seconds: f64, max_id: u64) {
    let round = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, base) = (client(certs), base.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut id = c as u64 % max_id;
                while started.elapsed() < round {
                    id = id % max_id + 1;
                    let sent = Instant::now();
                    let response = client.get(format!("{base}/jobs/{id}/status")).send().await.unwrap();
                    assert!(response.status().is_success(), "status {id}: {}", response.status());
                    response.bytes().await.unwrap();
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    println!(
        "status_rps clients={clients} per_second={:.0}",
        all.len() as f64 / started.elapsed().as_secs_f64()
    );
    summary("status_latency_ms", all);
}

/// Makes `count` jobs that each print a line of their own, `clients` at a
/// time, and prints `done ID N` for each as soon as the server said it
/// finished with exit code 0. The first failed request (the server was
/// killed, say) ends it quietly: what was printed is what the client saw.
async fn completions(certs: &Path, base: String, count: u64, clients: u64) {
    use std::io::Write;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, next) = (client(certs), base.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= count {
                        return;
                    }
                    let body = serde_json::json!({"cmd": "echo", "args": [format!("rcmd-job-{n}")]});
                    let Ok(response) = client.put(format!("{base}/jobs")).json(&body).send().await else {
                        return;
                    };
                    let Ok(created) = response.json::<serde_json::Value>().await else { return };
                    let Some(id) = created["id"].as_u64() else { return };
                    let url = format!("{base}/jobs/{id}/status?wait=true");
                    let Ok(response) = client.get(url).send().await else { return };
                    let Ok(status) = response.json::<serde_json::Value>().await else { return };
                    if status["exit_code"] != 0 {
                        return;
                    }
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "done {id} {n}").and_then(|()| out.flush());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Checks every `done ID N` line of `file`: job ID is still completed with
/// exit code 0 and its stdout is `rcmd-job-N`. Prints the counts.
async fn verify(certs: &Path, base: String, file: &Path) {
    let client = client(certs);
    let (mut intact, mut broken) = (0, 0);
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let [_, id, n] = line.split(' ').collect::<Vec<_>>()[..] else { continue };
        let status = client.get(format!("{base}/jobs/{id}/status")).send().await.unwrap();
        let status: serde_json::Value = status.json().await.unwrap_or_default();
        let output = client.get(format!("{base}/jobs/{id}/output/stdout")).send().await.unwrap();
        let output = output.bytes().await.unwrap_or_default();
        if status["status"] == "completed" && status["exit_code"] == 0 && output == format!("rcmd-job-{n}\n")
        {
            intact += 1;
        } else {
            eprintln!("job {id}: {status} output {:?}", String::from_utf8_lossy(&output));
            broken += 1;
        }
    }
    println!("verify intact={intact} broken={broken}");
}

fn stamps() {
    let mut delays = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(written) = line.trim().parse::<u128>() else {
            continue;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        delays.push(now.saturating_sub(written) as f64 / 1e6);
    }
    summary("follow_latency_ms", delays);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize| -> f64 { args[i].parse().unwrap_or_else(|_| panic!("argument {i} must be a number")) };
    let base = |i: usize| format!("https://{}", args[i]);
    match args.first().map(String::as_str) {
        Some("latency") => latency(num(1) as usize, &args[2..]),
        Some("spawn") => spawn(num(1) as usize, num(2)),
        Some("throughput") => throughput(Path::new(&args[1]), base(2), num(3) as usize, num(4)).await,
        Some("fill") => fill(Path::new(&args[1]), base(2), num(3) as usize, args[4..].to_vec()).await,
        Some("status") => status(Path::new(&args[1]), base(2), num(3) as usize, num(4), num(5) as u64).await,
        Some("stamps") => stamps(),
        Some("completions") => completions(Path::new(&args[1]), base(2), num(3) as u64, num(4) as u64).await,
        Some("verify") => verify(Path::new(&args[1]), base(2), Path::new(&args[3])).await,
        _ => {
            eprintln!("usage: see the top of examples/loadgen.rs");
            std::process::exit(2);
        }
    }
}
