//! `cargo bench -p pki-tool --bench euicc_batch [-- COUNT]`
//!
//! eUICC certificates per second from `euicc-batch` (key generation, minting, signing and writing
//! three files each), next to raw ECDSA P-256 signatures per second measured in the same run, on
//! one thread and on all cores. Each eUICC costs one key generation and one signature, so half the
//! raw signing rate is the natural ceiling on one thread. Run for the default (Variant O) profile,
//! where the EUM signs, and for SGP.26 v3 Variant A, where the EUM SubCA does.

use pki_tool::hierarchy::{self, BatchOptions, Hierarchy, InitOptions};
use pki_tool::{Curve, Eid, PrivateKey, Role, Variant};
use std::time::{Duration, Instant};

fn rate(threads: usize, min: Duration, op: impl Fn() + Sync) -> f64 {
    let start = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0usize;
                    while start.elapsed() < min {
                        for _ in 0..16 {
                            op();
                        }
                        n += 16;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let scratch = workspace_tests::common::TempDir::new("bench");
    println!("eUICC batch benchmark: {count} certificates per run, {cores} cores");
    for (profile, variant) in [("default", Variant::O), ("sgp26-v3", Variant::A)] {
        let dir = scratch.0.join(format!("{profile}-{variant}"));
        hierarchy::init(&InitOptions {
            profile: profile.into(),
            variant,
            ..InitOptions::lab(&dir, &Curve::ALL, "smds.example")?
        })?;
        let h = Hierarchy::open(&dir)?;
        println!(
            "\n== profile {profile}, Variant {variant}: eUICCs issued by the {}",
            variant.issuer(Role::Euicc)
        );
        run(&h, &dir, count, cores)?;
    }
    Ok(())
}

fn run(
    h: &Hierarchy,
    dir: &std::path::Path,
    count: usize,
    cores: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    for curve in Curve::ALL {
        let key = PrivateKey::generate(curve)?;
        let tbs = vec![0x5Au8; 400];
        let min = Duration::from_secs(2);
        let sign_1 = rate(1, min, || {
            std::hint::black_box(key.sign_der(&tbs));
        });
        let sign_n = rate(cores, min, || {
            std::hint::black_box(key.sign_der(&tbs));
        });
        let keygen_1 = rate(1, min, || {
            std::hint::black_box(PrivateKey::generate(curve).ok());
        });
        println!("\n{curve}:");
        println!("  raw ECDSA sign (1 thread)        {sign_1:>9.0} /s");
        println!("  raw ECDSA sign ({cores} threads)       {sign_n:>9.0} /s");
        println!("  key generation (1 thread)        {keygen_1:>9.0} /s");
        let issuer = h.slot(h.profile.variant.issuer(Role::Euicc), curve, None);
        let (eum, eum_key) = (h.cert(&issuer)?, h.key(&issuer)?);
        let template = h.profile.template(Role::Euicc);
        let mut vars = pki_tool::profile::Vars::default();
        vars.set("eid", "89049032123451234512345678901235");
        let mint_1 = rate(1, min, || {
            let Ok(k) = PrivateKey::generate(curve) else {
                return;
            };
            let cert = pki_tool::mint::mint(&pki_tool::mint::MintInput {
                template,
                vars: &vars,
                subject_key: k.public_key(),
                signer: pki_tool::mint::Signer::Issuer(&eum, &eum_key),
                now: 0,
            });
            std::hint::black_box((cert.ok(), k.to_pem()));
        });
        println!(
            "  keygen + mint, no files (1 thread) {mint_1:>7.0} /s  = {:.2} x raw signing",
            mint_1 / sign_1
        );
        let mut first = Eid::parse("89049032000000000000000000000066")?;
        for threads in [1, cores] {
            let out = dir.join(format!("batch-{}-{threads}", curve.cli_name()));
            let start = Instant::now();
            let eids = h
                .euicc_batch(
                    &BatchOptions {
                        curve,
                        count,
                        first,
                        out,
                        threads,
                        force: false,
                        resume: false,
                        cancel: None,
                        now: pki_tool::time::now(),
                    },
                    &|_| {},
                )?
                .eids;
            let per_sec = eids.len() as f64 / start.elapsed().as_secs_f64();
            let base = if threads == 1 { sign_1 } else { sign_n };
            println!(
                "  euicc-batch ({threads} thread{})          {per_sec:>9.0} certs/s  = {:.2} x raw signing on {threads} thread{} (goal >= 0.50)",
                if threads == 1 { " " } else { "s" },
                per_sec / base,
                if threads == 1 { "" } else { "s" },
            );
            if let Some(last) = eids.last() {
                first = last.successor(8)?;
            }
        }
    }
    Ok(())
}
