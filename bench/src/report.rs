//! Results: one JSON object per measurement (JSON Lines, for comparing
//! commits) and Markdown tables for people.

use std::fmt::Write as _;

use serde::Serialize;

use crate::harness::RunStats;

/// One measurement: a load row (ops/s and latencies) or a single value
/// (a time, a memory size). Fields that do not apply are left out of the
/// JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Measurement {
    /// `sign`, `tls`, `store` or `card`.
    pub group: &'static str,
    /// What was measured: the signature scheme for `sign` and `card`
    /// load rows, `mtls_handshake` for `tls`, the quantity for `store`
    /// and the other `card` rows.
    pub name: String,
    /// The key type (`rsa2048`, `p256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'static str>,
    /// Who did the work: `direct`, `agent`, `module`, `p11kit`,
    /// `software`, `per_program` (`card` rows), or `floor` (the echo
    /// server of floor.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<&'static str>,
    /// Concurrent clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    /// Operations completed in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// The window, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// Throughput.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<f64>,
    /// Median latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th-percentile latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// CPU time of the process serving the clients (the daemon,
    /// `p11-kit server` and its per-connection children, the echo
    /// server) over the window, per operation, µs; on metered rows that
    /// have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_op: Option<f64>,
    /// CPU time of the clients' process (the worker) over the window,
    /// per operation, µs; on metered rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_us_per_op: Option<f64>,
    /// Failed operations (warm-up included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// The first failure, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The TLS scheme of the client's CertificateVerify (`tls` rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// On agent rows: agent ops/s divided by direct ops/s, same
    /// scheme, key and clients. 1.0 is parity; above is better.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_direct: Option<f64>,
    /// On module `sign` rows: the agent's PKCS#11 module's ops/s divided
    /// by the agent's own client's. 1.0 would be no cost for the module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_agent: Option<f64>,
    /// On agent and module `sign` rows: their ops/s divided by p11-kit
    /// remoting ops/s. Above 1.0 means faster than p11-kit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_p11kit: Option<f64>,
    /// On agent `sign` rows: the agent's ops/s (module in a helper
    /// process, the default) divided by the same agent's with the module
    /// loaded in-process: what module isolation costs. 1.0 is free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_agent_inproc: Option<f64>,
    /// On agent `tls` rows: agent handshakes/s divided by those with a
    /// software key. Above 1.0 means the agent is faster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_software: Option<f64>,
    /// On agent and module `sign` rows: their p50 minus the direct
    /// row's and the floor's (same clients), µs: the latency the agent
    /// adds beyond the signature and the least a round trip between
    /// processes costs. On `hello_round_trip` rows: p50 minus the
    /// floor's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_us: Option<f64>,
    /// A single value (`store` rows, `card` first signatures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Its unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// How many identities the agent held (`store` rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identities: Option<usize>,
    /// The slow card's latency profile and scale (`card` rows), e.g.
    /// `piv x1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_profile: Option<String>,
}

impl Measurement {
    /// A load row from a harness run.
    pub(crate) fn load(group: &'static str, name: impl Into<String>, stats: &RunStats) -> Self {
        Measurement {
            group,
            name: name.into(),
            ops: Some(stats.ops),
            duration_secs: Some(stats.window_secs),
            ops_per_sec: Some(round(stats.ops_per_sec(), 1)),
            p50_us: Some(round(stats.p50_us(), 1)),
            p99_us: Some(round(stats.p99_us(), 1)),
            server_cpu_us_per_op: stats.server_cpu_us_per_op().map(|v| round(v, 2)),
            client_cpu_us_per_op: stats.client_cpu_us_per_op().map(|v| round(v, 2)),
            errors: Some(stats.errors),
            first_error: stats.first_error.clone(),
            scheme: stats.scheme.clone(),
            ..Measurement::default()
        }
    }

    /// A single value.
    pub(crate) fn value(group: &'static str, name: &str, value: f64, unit: &'static str) -> Self {
        Measurement {
            group,
            name: name.to_owned(),
            value: Some(round(value, 3)),
            unit: Some(unit),
            ..Measurement::default()
        }
    }

    /// Where this row keeps its ratio to `backend`'s row, when it has a
    /// field for it (in the JSON, `ratio_vs_<backend>`).
    fn ratio_vs_mut(&mut self, backend: &str) -> Option<&mut Option<f64>> {
        match backend {
            "direct" => Some(&mut self.ratio_vs_direct),
            "agent" => Some(&mut self.ratio_vs_agent),
            "p11kit" => Some(&mut self.ratio_vs_p11kit),
            "agent_inproc" => Some(&mut self.ratio_vs_agent_inproc),
            "software" => Some(&mut self.ratio_vs_software),
            _ => None,
        }
    }

    /// One line of progress for stderr.
    pub(crate) fn progress(&self) -> String {
        let mut line = format!("{:5} {}", self.group, self.name);
        for (label, value) in [("key", self.key), ("backend", self.backend)] {
            if let Some(value) = value {
                let _ = write!(line, " {label}={value}");
            }
        }
        if let Some(clients) = self.clients {
            let _ = write!(line, " clients={clients}");
        }
        if let (Some(ops), Some(p50), Some(p99)) = (self.ops_per_sec, self.p50_us, self.p99_us) {
            let _ = write!(line, ": {ops:.1} ops/s, p50 {p50:.0} µs, p99 {p99:.0} µs");
        }
        if let Some(cpu) = self.client_cpu_us_per_op {
            let _ = write!(
                line,
                ", CPU/op {} µs",
                cpu_cell(self.server_cpu_us_per_op, cpu)
            );
        }
        if let (Some(value), Some(unit)) = (self.value, self.unit) {
            let _ = write!(line, ": {value} {unit}");
        }
        if let Some(errors) = self.errors.filter(|e| *e > 0) {
            let _ = write!(line, " ({errors} errors)");
        }
        line
    }
}

/// Rounds to `digits` decimals, so the JSON is readable.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// What a row's median latency leaves once the medians of the work it
/// shares with cheaper rows (`beneath`: the signature, the floor) are
/// taken out, µs; `None` when any is missing. Medians do not subtract
/// exactly (the median of a sum is not the sum of medians), and the
/// rows are measured in different slices of time: read it as an
/// estimate, whose noise can make it negative.
pub(crate) fn own_us(p50: Option<f64>, beneath: &[Option<f64>]) -> Option<f64> {
    let mut own = p50?;
    for p50 in beneath {
        own -= (*p50)?;
    }
    Some(round(own, 1))
}

/// `numerator / denominator` of two rows' throughput, when both exist.
pub(crate) fn ratio(numerator: &Measurement, denominator: Option<&Measurement>) -> Option<f64> {
    let top = numerator.ops_per_sec?;
    let bottom = denominator?.ops_per_sec.filter(|v| *v > 0.0)?;
    Some(round(top / bottom, 3))
}

/// Every measurement of a run, in order.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The measurements.
    pub rows: Vec<Measurement>,
}

impl Report {
    /// Adds `row`, and says so on stderr (a full run takes minutes).
    pub(crate) fn push(&mut self, row: Measurement) {
        eprintln!("{}", row.progress());
        self.rows.push(row);
    }

    /// Adds the rows of one comparison (same group, name, key and
    /// clients, one row per backend), each numerator of `comparison`'s
    /// ratios with its ratio to the denominator.
    pub(crate) fn push_compared(&mut self, mut rows: Vec<Measurement>, comparison: &Comparison) {
        for (_, numerator, denominator) in comparison.ratios {
            let bottom = rows
                .iter()
                .find(|r| r.backend == Some(denominator))
                .cloned();
            if let Some(top) = rows.iter_mut().find(|r| r.backend == Some(numerator)) {
                let value = ratio(top, bottom.as_ref());
                if let Some(field) = top.ratio_vs_mut(denominator) {
                    *field = value;
                }
            }
        }
        for row in rows {
            self.push(row);
        }
    }

    /// The rows as JSON Lines.
    pub(crate) fn json_lines(&self) -> Result<String, serde_json::Error> {
        let mut out = String::new();
        for row in &self.rows {
            out.push_str(&serde_json::to_string(row)?);
            out.push('\n');
        }
        Ok(out)
    }

    fn find(
        &self,
        group: &str,
        name: &str,
        key: Option<&str>,
        clients: Option<usize>,
        backend: &str,
    ) -> Option<&Measurement> {
        self.rows.iter().find(|r| {
            r.group == group
                && r.name == name
                && r.key == key
                && r.clients == clients
                && r.backend == Some(backend)
        })
    }

    /// The (name, key, clients) combinations of `group`'s load rows, in
    /// order.
    fn cases(&self, group: &str) -> Vec<(String, Option<&'static str>, Option<usize>)> {
        let mut cases = Vec::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.group == group && r.ops_per_sec.is_some())
        {
            let case = (r.name.clone(), r.key, r.clients);
            if !cases.contains(&case) {
                cases.push(case);
            }
        }
        cases
    }

    /// Markdown tables: signing, handshakes, the slow card, store.
    pub(crate) fn tables(&self) -> String {
        let mut out = String::new();
        for comparison in [&SIGN, &TLS, &CARD] {
            self.load_table(&mut out, comparison);
        }
        out.push_str(&crate::card::first_signature_table(&self.rows));
        let store: Vec<&Measurement> = self.rows.iter().filter(|r| r.group == "store").collect();
        if !store.is_empty() {
            out.push_str("Store scale\n\n| measurement | identities | value | p50 µs | p99 µs |\n|---|---:|---:|---:|---:|\n");
            for r in store {
                let value = match (r.value, r.unit, r.ops_per_sec) {
                    (Some(v), Some(unit), _) => format!("{v} {unit}"),
                    (_, _, Some(ops)) => format!("{ops:.0} ops/s"),
                    _ => "-".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {value} | {} | {} |",
                    r.name,
                    r.identities.map(|n| n.to_string()).unwrap_or_default(),
                    opt(r.p50_us, 0),
                    opt(r.p99_us, 0),
                );
            }
            out.push('\n');
        }
        out
    }

    fn load_table(&self, out: &mut String, comparison: &Comparison) {
        let Comparison {
            group,
            title,
            backends,
            cpu,
            ratios,
            own,
        } = *comparison;
        let cases = self.cases(group);
        if cases.is_empty() {
            return;
        }
        let _ = writeln!(out, "{title}\n");
        let mut header = "| key | what | clients |".to_owned();
        let mut rule = "|---|---|---:|".to_owned();
        if cpu {
            for (_, label) in backends {
                let _ = write!(header, " {label} CPU µs/op |");
                rule.push_str("---:|");
            }
        }
        for (_, label) in backends {
            let _ = write!(header, " {label} ops/s | {label} p50 / p99 |");
            rule.push_str("---:|---:|");
        }
        for (label, _, _) in ratios {
            let _ = write!(header, " {label} |");
            rule.push_str("---:|");
        }
        for (label, _) in own {
            let _ = write!(header, " {label} |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for (name, key, clients) in cases {
            let _ = write!(
                out,
                "| {} | {name} | {} |",
                key.unwrap_or("-"),
                clients.map(|c| c.to_string()).unwrap_or_default()
            );
            let find = |backend| self.find(group, &name, key, clients, backend);
            if cpu {
                for (backend, _) in backends {
                    let cell = find(backend)
                        .and_then(|r| {
                            Some(cpu_cell(r.server_cpu_us_per_op, r.client_cpu_us_per_op?))
                        })
                        .unwrap_or_else(|| "-".to_owned());
                    let _ = write!(out, " {cell} |");
                }
            }
            for (backend, _) in backends {
                match self.find(group, &name, key, clients, backend) {
                    Some(r) => {
                        let _ = write!(
                            out,
                            " {}{} | {} / {} |",
                            opt(r.ops_per_sec, 0),
                            if r.errors.unwrap_or(0) > 0 { "*" } else { "" },
                            opt(r.p50_us, 0),
                            opt(r.p99_us, 0)
                        );
                    }
                    None => out.push_str(" - | - |"),
                }
            }
            for (_, numerator, denominator) in ratios {
                let value = find(numerator).and_then(|top| ratio(top, find(denominator)));
                let _ = write!(out, " {} |", opt(value, 3));
            }
            for (_, backend) in own {
                let _ = write!(out, " {} |", opt(find(backend).and_then(|r| r.own_us), 0));
            }
            out.push('\n');
        }
        let errors = self
            .rows
            .iter()
            .any(|r| r.group == group && r.errors.unwrap_or(0) > 0);
        if errors {
            out.push_str("\n\\* some operations failed; see `errors` in the JSON.\n");
        }
        out.push('\n');
    }
}

/// One comparison: the backends measured side by side in a group, and
/// the ratios between them, for the JSON and the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comparison {
    /// The group of its rows.
    group: &'static str,
    /// The table's title.
    title: &'static str,
    /// Backends, as rows name them, and their columns' labels.
    backends: &'static [(&'static str, &'static str)],
    /// Whether the table leads with each backend's CPU time per
    /// operation.
    cpu: bool,
    /// Ratios of throughput: column label, numerator backend, denominator
    /// backend. The numerator's row carries it as `ratio_vs_<denominator>`.
    ratios: &'static [(&'static str, &'static str, &'static str)],
    /// Columns of `own_us`: label, backend.
    own: &'static [(&'static str, &'static str)],
}

/// Signing: the token in the worker, the agent's client, the agent's
/// PKCS#11 module, p11-kit remoting, and the floor. CPU per operation
/// first: on a machine whose cores are shared, what a signature costs
/// in CPU moves less than how long it takes.
pub(crate) const SIGN: Comparison = Comparison {
    group: "sign",
    title: "Signing: CPU µs per operation (serving process + client), ops/s, \
            p50 / p99 latency in µs, the agent's own latency in µs",
    backends: &[
        ("direct", "direct"),
        ("agent", "agent"),
        ("agent_inproc", "agent, module in-process"),
        ("module", "module"),
        ("p11kit", "p11-kit"),
        ("floor", "floor"),
    ],
    cpu: true,
    ratios: &[
        ("agent/direct", "agent", "direct"),
        ("agent/in-process", "agent", "agent_inproc"),
        ("agent/p11-kit", "agent", "p11kit"),
        ("module/agent", "module", "agent"),
        ("module/p11-kit", "module", "p11kit"),
    ],
    own: &[
        ("agent own µs", "agent"),
        ("in-process own µs", "agent_inproc"),
        ("module own µs", "module"),
    ],
};

/// Handshakes: the key through cryptoki in the client, through the
/// agent, in software.
pub(crate) const TLS: Comparison = Comparison {
    group: "tls",
    title: "Mutual-TLS 1.3 handshakes: handshakes/s, p50 / p99 latency in µs",
    backends: &[
        ("direct", "in-process cryptoki"),
        ("agent", "agent"),
        ("software", "software key"),
    ],
    cpu: false,
    ratios: &[
        ("agent/direct", "agent", "direct"),
        ("agent/software", "agent", "software"),
    ],
    own: &[],
};

/// Signing on the slow card: the agent, cryptoki in the worker (logged
/// in once, and as each new program pays), p11-kit remoting.
pub(crate) const CARD: Comparison = Comparison {
    group: "card",
    title: "Signing on the slow card (its profile: next table): ops/s, p50 / p99 latency in µs",
    backends: &[
        ("direct", "direct"),
        ("per_program", "direct, per program"),
        ("agent", "agent"),
        ("p11kit", "p11-kit"),
    ],
    ratios: &[
        ("agent/direct", "agent", "direct"),
        ("agent/per-program", "agent", "per_program"),
        ("agent/p11-kit", "agent", "p11kit"),
    ],
    cpu: false,
    own: &[],
};

/// CPU µs per operation as `server + client`; `-` for the server when
/// none serves (the direct rows).
fn cpu_cell(server: Option<f64>, client: f64) -> String {
    format!("{} + {client:.1}", opt(server, 1))
}

/// A number with `digits` decimals, or `-`.
fn opt(value: Option<f64>, digits: usize) -> String {
    value
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backend: &'static str, ops: f64) -> Measurement {
        Measurement {
            group: "sign",
            name: "rsa_pss_rsae_sha256".into(),
            key: Some("rsa2048"),
            backend: Some(backend),
            clients: Some(1),
            ops_per_sec: Some(ops),
            p50_us: Some(1000.0),
            p99_us: Some(1500.0),
            errors: Some(0),
            ..Measurement::default()
        }
    }

    /// `row` with CPU per operation, as a metered run gives it.
    fn metered(backend: &'static str, ops: f64, server: Option<f64>, client: f64) -> Measurement {
        Measurement {
            server_cpu_us_per_op: server,
            client_cpu_us_per_op: Some(client),
            ..row(backend, ops)
        }
    }

    #[test]
    fn own_latency_is_what_is_left_over_the_rows_beneath() {
        assert_eq!(own_us(Some(269.0), &[Some(78.0), Some(85.0)]), Some(106.0));
        assert_eq!(own_us(Some(33.3), &[Some(20.1)]), Some(13.2));
        assert_eq!(own_us(Some(20.0), &[Some(30.0)]), Some(-10.0));
        assert_eq!(own_us(Some(269.0), &[Some(78.0), None]), None);
        assert_eq!(own_us(None, &[Some(1.0)]), None);
    }

    #[test]
    fn cpu_per_operation_leads_the_signing_table() {
        let mut report = Report::default();
        report.push(Measurement {
            name: "p256_size_echo".into(),
            key: None,
            ..metered("floor", 40000.0, Some(6.04), 9.96)
        });
        let mut agent = metered("agent", 950.0, Some(120.0), 31.25);
        agent.own_us = Some(42.0);
        report.push_compared(vec![metered("direct", 1000.0, None, 900.0), agent], &SIGN);
        let tables = report.tables();
        assert!(
            tables.contains("| clients | direct CPU µs/op | agent CPU µs/op | agent, module in-process CPU µs/op | module CPU µs/op | p11-kit CPU µs/op | floor CPU µs/op | direct ops/s |"),
            "{tables}"
        );
        assert!(
            tables.contains("| - | p256_size_echo | 1 | - | - | - | - | - | 6.0 + 10.0 | - | - | - | - | - | - | - | - | - | - | 40000 | 1000 / 1500 | - | - | - | - | - | - | - | - |"),
            "{tables}"
        );
        assert!(
            tables.contains("| rsa2048 | rsa_pss_rsae_sha256 | 1 | - + 900.0 | 120.0 + 31.2 | - | - | - | - | 1000 |"),
            "{tables}"
        );
        assert!(
            tables.contains("| 0.950 | - | - | - | - | 42 | - | - |"),
            "{tables}"
        );
        let json = report.json_lines().expect("json");
        let agent: serde_json::Value =
            serde_json::from_str(json.lines().nth(2).expect("agent line")).expect("parses");
        assert_eq!(agent["server_cpu_us_per_op"], 120.0);
        assert_eq!(agent["client_cpu_us_per_op"], 31.25);
        assert_eq!(agent["own_us"], 42.0);
        let direct: serde_json::Value =
            serde_json::from_str(json.lines().nth(1).expect("direct line")).expect("parses");
        assert!(direct.get("server_cpu_us_per_op").is_none());
        // The handshake table has no CPU or own columns (its rows' CPU is
        // in the JSON).
        let mut tls = Report::default();
        tls.push(Measurement {
            group: "tls",
            name: "mtls_handshake".into(),
            ..metered("agent", 500.0, Some(300.0), 900.0)
        });
        assert!(!tls.tables().contains("CPU"), "{}", tls.tables());
        assert!(!tls.tables().contains("own"), "{}", tls.tables());
    }

    #[test]
    fn ratios_and_tables() {
        let mut report = Report::default();
        report.push_compared(
            vec![
                row("direct", 1000.0),
                row("agent", 950.0),
                row("module", 912.0),
                row("p11kit", 500.0),
            ],
            &SIGN,
        );
        let find = |backend| {
            report.find(
                "sign",
                "rsa_pss_rsae_sha256",
                Some("rsa2048"),
                Some(1),
                backend,
            )
        };
        let agent = find("agent").expect("agent row");
        assert_eq!(agent.ratio_vs_direct, Some(0.95));
        assert_eq!(agent.ratio_vs_p11kit, Some(1.9));
        assert_eq!(agent.ratio_vs_agent, None);
        let module = find("module").expect("module row");
        assert_eq!(module.ratio_vs_agent, Some(0.96));
        assert_eq!(module.ratio_vs_p11kit, Some(1.824));
        assert_eq!(module.ratio_vs_direct, None);
        assert_eq!(find("direct").expect("direct row").ratio_vs_agent, None);
        assert_eq!(ratio(agent, None), None);
        let tables = report.tables();
        assert!(
            tables.contains("| rsa2048 | rsa_pss_rsae_sha256 | 1 | - | - | - | - | - | - | 1000 | 1000 / 1500 | 950 | 1000 / 1500 | - | - | 912 | 1000 / 1500 | 500 | 1000 / 1500 | - | - | 0.950 | - | 1.900 | 0.960 | 1.824 | - | - | - |"),
            "{tables}"
        );
        let json = report.json_lines().expect("json");
        assert_eq!(json.lines().count(), 4);
        let rows: Vec<serde_json::Value> = json
            .lines()
            .map(|line| serde_json::from_str(line).expect("parses"))
            .collect();
        assert_eq!(rows[0]["group"], "sign");
        assert!(rows[0].get("value").is_none());
        assert_eq!(rows[2]["backend"], "module");
        assert_eq!(rows[2]["ratio_vs_agent"], 0.96);
    }

    #[test]
    fn a_backend_left_out_leaves_its_columns_empty() {
        let mut report = Report::default();
        report.push_compared(vec![row("direct", 1000.0), row("agent", 500.0)], &SIGN);
        let tables = report.tables();
        assert!(
            tables.contains(
                "| 1000 | 1000 / 1500 | 500 | 1000 / 1500 | - | - | - | - | - | - | - | - | 0.500 | - | - | - | - | - | - | - |"
            ),
            "{tables}"
        );
    }
}
