//! The benchmark (`bench/`, issue 7) in smoke mode: it builds, starts
//! its daemons and workers, and measures something in every group. Its
//! numbers are not judged here; docs/BENCHMARKS.md is where they are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Builds `p11agent-bench` in the profile these tests were built with
/// (it then builds the daemon in the same one) and returns its path.
fn bench_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|n| n == "release");
    let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    build.args([
        "build",
        "--quiet",
        "--message-format=json",
        "-p",
        "p11agent-bench",
        "--bin",
        "p11agent-bench",
    ]);
    if release {
        build.arg("--release");
    }
    let out = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build of p11agent-bench failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "p11agent-bench")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the p11agent-bench executable")
}

#[test]
fn a_smoke_run_measures_every_group() {
    let bench = bench_binary();
    let started = Instant::now();
    let out = Command::new(&bench)
        .args(["--smoke", "--json", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run p11agent-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "p11agent-bench --smoke failed ({}):\n{stderr}",
        out.status
    );
    eprintln!("smoke run took {:?}", started.elapsed());

    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is a JSON object"))
        .collect();
    for group in ["sign", "tls", "store", "card"] {
        let loads: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|r| r["group"] == group && r.get("ops_per_sec").is_some())
            .collect();
        assert!(!loads.is_empty(), "no {group} rows:\n{stderr}");
        for row in loads {
            assert!(
                row["ops"].as_u64().is_some_and(|n| n > 0),
                "a {group} row measured nothing: {row}\n{stderr}"
            );
            assert!(row["p50_us"].as_f64().is_some_and(|v| v > 0.0), "{row}");
            assert!(row["p99_us"].as_f64() >= row["p50_us"].as_f64(), "{row}");
        }
    }
    // Every agent load row carries its ratio to the direct path, the
    // point of the exercise; the agent's bare round trip, which has no
    // direct counterpart, is measured too.
    assert!(
        rows.iter().any(|r| r["name"] == "hello_round_trip"),
        "no round trip row:\n{stderr}"
    );
    for row in rows.iter().filter(|r| {
        r["backend"] == "agent"
            && r["group"] != "store"
            && r["name"] != "hello_round_trip"
            && r.get("ops_per_sec").is_some()
    }) {
        assert!(
            row["ratio_vs_direct"].as_f64().is_some_and(|v| v > 0.0),
            "{row}"
        );
    }
    // The agent's PKCS#11 module signs every case the agent does (its
    // hash-and-sign mechanisms reach the agent's `sign`, which the
    // purpose binding allows), and its rows carry their ratio to the
    // agent's own client.
    let module_rows: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["group"] == "sign" && r["backend"] == "module")
        .collect();
    for agent in rows.iter().filter(|r| {
        r["group"] == "sign" && r["backend"] == "agent" && r["name"] != "hello_round_trip"
    }) {
        assert!(
            module_rows
                .iter()
                .any(|m| m["name"] == agent["name"] && m["clients"] == agent["clients"]),
            "no module row for {agent}:\n{stderr}"
        );
    }
    for row in &module_rows {
        assert!(
            row["ratio_vs_agent"].as_f64().is_some_and(|v| v > 0.0),
            "{row}"
        );
    }
    // What module isolation costs: every signing row of the agent (its
    // module in a helper process) is compared with the same agent with
    // the module in-process.
    for agent in rows.iter().filter(|r| {
        r["group"] == "sign" && r["backend"] == "agent" && r["name"] != "hello_round_trip"
    }) {
        assert!(
            agent["ratio_vs_agent_inproc"]
                .as_f64()
                .is_some_and(|v| v > 0.0),
            "{agent}"
        );
        assert!(
            rows.iter().any(|r| r["backend"] == "agent_inproc"
                && r["name"] == agent["name"]
                && r["clients"] == agent["clients"]),
            "no in-process row for {agent}:\n{stderr}"
        );
    }
    // The signing group's CPU per operation, its headline: the worker's
    // on every row, the serving process's (daemon, p11-kit server, echo
    // server) on every row that has one. Present, not judged.
    for row in rows
        .iter()
        .filter(|r| r["group"] == "sign" && r.get("ops_per_sec").is_some())
    {
        assert!(row["client_cpu_us_per_op"].is_f64(), "{row}");
        let served = row["backend"] != "direct";
        assert_eq!(
            row["server_cpu_us_per_op"].is_f64(),
            served,
            "server CPU on a row with a server, and only there: {row}"
        );
    }
    // The floor (a bare round trip of a P-256 sign's sizes) at every
    // client count of the signing rows, and the agent's own latency over
    // it on the agent's and module's rows and the round trip's.
    for sign in rows
        .iter()
        .filter(|r| r["group"] == "sign" && r["backend"] == "agent")
    {
        assert!(
            rows.iter().any(|f| f["backend"] == "floor"
                && f["name"] == "p256_size_echo"
                && f["clients"] == sign["clients"]),
            "no floor row for {sign}:\n{stderr}"
        );
    }
    for row in rows
        .iter()
        .filter(|r| r["group"] == "sign" && (r["backend"] == "agent" || r["backend"] == "module"))
    {
        assert!(row["own_us"].is_f64(), "no own_us: {row}");
    }
    // The store group's single values: start-up times, memory, and the
    // watcher's CPU per poll while nothing happens.
    for name in [
        "all_identities_listed_after_start",
        "daemon_rss",
        "idle_cpu_per_poll",
    ] {
        assert!(
            rows.iter()
                .any(|r| r["name"] == name && r["value"].as_f64().is_some_and(|v| v > 0.0)),
            "no {name}:\n{stderr}"
        );
    }
    // The slow card: the time to the first signature from the card's
    // insertion (agent) and from a program's start (direct), and
    // signatures made as each new program makes them, for both keys.
    for (name, backend) in [
        ("insertion_to_first_signature", "agent"),
        ("program_start_to_first_signature", "direct"),
    ] {
        for key in ["p256", "rsa2048"] {
            assert!(
                rows.iter().any(|r| r["group"] == "card"
                    && r["name"] == name
                    && r["backend"] == backend
                    && r["key"] == key
                    && r["value"].as_f64().is_some_and(|v| v > 0.0)),
                "no card {name} row for {backend} with {key}:\n{stderr}"
            );
        }
    }
    for key in ["p256", "rsa2048"] {
        assert!(
            rows.iter().any(|r| r["group"] == "card"
                && r["backend"] == "per_program"
                && r["key"] == key
                && r["ops"].as_u64().is_some_and(|n| n > 0)),
            "no card per_program row with {key}:\n{stderr}"
        );
    }
    // The tables went to stderr, since the JSON had stdout.
    assert!(
        stderr.contains("agent/direct")
            && stderr.contains("module/agent")
            && stderr.contains("agent/per-program"),
        "no tables on stderr:\n{stderr}"
    );
    for column in [
        "| key | what | clients | direct CPU µs/op | agent CPU µs/op |",
        "floor CPU µs/op",
        "floor p50 / p99",
        "agent own µs",
        "in-process own µs",
        "agent/in-process",
        "module own µs",
        "| p256_size_echo |",
    ] {
        assert!(
            stderr.contains(column),
            "no {column:?} in the tables:\n{stderr}"
        );
    }
}
