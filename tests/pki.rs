//! `rcmd pki init` and `rcmd pki client`: the certificates' fields, the files'
//! modes, and every refusal, through the library and the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::TempDir;
use rcmd::pki::{self, CertInfo, InitOptions, Kind};
use rcmd::testing::TestPki;
use x509_parser::prelude::{FromDer, X509Certificate};

fn rcmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rcmd")).args(args).output().expect("run rcmd")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(&read(path)).unwrap().to_vec()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_a_p256_ca_with_the_right_constraints() {
    let pki = TestPki::new();
    let ca_der = der(&pki.cert_dir().join("ca.crt"));
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    let constraints = ca.basic_constraints().unwrap().unwrap().value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let usage = ca.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && usage.digital_signature());
    assert_eq!(ca.signature_algorithm.algorithm.to_id_string(), "1.2.840.10045.4.3.2", "ecdsa-with-SHA256");
    let curve = ca.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7", "P-256");
    let info = CertInfo::parse(&ca_der).unwrap();
    assert!(info.common_name.unwrap().starts_with("rcmd CA on "));
    let days = (info.not_after - info.not_before).whole_days();
    assert!((3649..=3651).contains(&days), "about 10 years, got {days} days");
    assert!(ca.verify_signature(None).is_ok(), "self-signed");
}

#[test]
fn the_server_certificate_names_loopback_the_host_and_every_san() {
    let dir = TempDir::new("sans");
    let mut options = InitOptions::new(dir.path().join("certs"));
    options.sans = vec!["rcmd.example".parse().unwrap(), "10.1.2.3".parse().unwrap()];
    pki::init(&options).unwrap();
    let info = CertInfo::parse(&der(&dir.path().join("certs/server.crt"))).unwrap();
    assert!(info.server_auth && !info.client_auth && !info.is_ca);
    for name in ["localhost", "rcmd.example"] {
        assert!(info.dns_names.iter().any(|n| n == name), "{name} in {:?}", info.dns_names);
    }
    if let Some(host) = pki::host_name() {
        assert!(info.dns_names.contains(&host.to_ascii_lowercase()), "host name {host}");
    }
    for ip in ["127.0.0.1", "::1", "10.1.2.3"] {
        assert!(info.ip_addresses.contains(&ip.parse().unwrap()), "{ip}");
    }
    let days = (info.not_after - info.not_before).whole_days();
    assert!((365..=366).contains(&days), "about a year, got {days}");
}

#[test]
fn the_first_client_identity_is_a_client_certificate() {
    let pki = TestPki::new();
    let info = CertInfo::parse(&der(&pki.cert_dir().join("client.crt"))).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("owner"));
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    // The cert dir is itself a client directory.
    pki::load_client(&pki.cert_dir()).unwrap();
}

#[test]
fn issued_certificates_chain_to_the_ca() {
    let pki = TestPki::with_clients(&["alice"]);
    let ca_der = der(&pki.cert_dir().join("ca.crt"));
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    for leaf in ["server.crt", "client.crt", "alice/client.crt"] {
        let leaf_der = der(&pki.cert_dir().join(leaf));
        let (_, cert) = X509Certificate::from_der(&leaf_der).unwrap();
        assert_eq!(cert.issuer(), ca.subject(), "{leaf}");
        cert.verify_signature(Some(ca.public_key())).unwrap_or_else(|e| panic!("{leaf}: {e}"));
    }
}

#[test]
fn openssl_verifies_the_chain() {
    // tests/run.sh installs openssl; without it this fails rather than passing.
    Command::new("openssl").arg("version").output().expect("openssl is installed (tests/run.sh installs it)");
    let pki = TestPki::with_clients(&["alice"]);
    let ca = pki.cert_dir().join("ca.crt");
    for (leaf, purpose) in
        [("server.crt", "sslserver"), ("client.crt", "sslclient"), ("alice/client.crt", "sslclient")]
    {
        let out = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca)
            .arg(pki.cert_dir().join(leaf))
            .output()
            .unwrap();
        assert!(out.status.success(), "{leaf}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn serials_are_random_and_recorded_in_the_index() {
    let pki = TestPki::with_clients(&["alice", "bob"]);
    let index = pki::Index::load(&pki.cert_dir()).unwrap();
    let kinds: Vec<_> = index.certificates.iter().map(|e| (e.cn.as_str(), e.kind)).collect();
    assert_eq!(kinds.len(), 5);
    assert!(kinds.contains(&("owner", Kind::Client)) && kinds.contains(&("alice", Kind::Client)));
    assert_eq!(kinds.iter().filter(|(_, k)| *k == Kind::Server).count(), 1);
    let mut serials: Vec<_> = index.certificates.iter().map(|e| e.serial.clone()).collect();
    for entry in &index.certificates {
        assert_eq!(entry.serial.as_bytes().len(), 16, "a 16-byte random serial: {}", entry.serial);
    }
    serials.dedup();
    assert_eq!(serials.len(), 5);
    let alice = CertInfo::parse(&der(&pki.cert_dir().join("alice").join("client.crt"))).unwrap();
    assert!(index.certificates.iter().any(|e| e.serial == alice.serial && e.cn == "alice"));
}

#[test]
fn private_keys_are_0600_and_no_temp_files_are_left() {
    let pki = TestPki::with_clients(&["alice"]);
    for key in ["ca.key", "server.key", "client.key", "alice/client.key"] {
        assert_eq!(mode(&pki.cert_dir().join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&pki.cert_dir()), 0o700);
    for dir in [pki.cert_dir(), pki.cert_dir().join("alice")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.contains(".tmp"), "temp file left: {name}");
        }
    }
    assert!(!pki.cert_dir().join("alice").join("ca.key").exists(), "the CA key is never copied");
}

#[test]
fn init_refuses_an_existing_ca_and_changes_nothing() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let before: Vec<_> =
        ["ca.key", "ca.crt", "server.crt", "index.json"].map(|f| read(&certs.join(f))).to_vec();
    let out = rcmd(&["pki", "init", "--dir", certs.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("--force") && stderr.contains("ca.key"), "{stderr}");
    let after: Vec<_> =
        ["ca.key", "ca.crt", "server.crt", "index.json"].map(|f| read(&certs.join(f))).to_vec();
    assert_eq!(before, after, "byte-for-byte unchanged");
}

#[test]
fn init_with_force_replaces_the_ca() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let old = read(&certs.join("ca.key"));
    let out = rcmd(&["pki", "init", "--force", "--client", "carol", "--dir", certs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(old, read(&certs.join("ca.key")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rcmd serve --certs") && stdout.contains("exec echo hello"), "{stdout}");
    let index = pki::Index::load(&certs).unwrap();
    assert_eq!(index.certificates.len(), 3, "a new CA starts a new index");
}

#[test]
fn client_writes_a_self_contained_directory() {
    let pki = TestPki::new();
    let out = rcmd(&["pki", "client", "alice", "--dir", pki.cert_dir().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alice = pki.cert_dir().join("alice");
    assert_eq!(read(&alice.join("ca.crt")), read(&pki.cert_dir().join("ca.crt")));
    let files = pki::load_client(&alice).unwrap();
    assert_eq!(files.identity.info.common_name.as_deref(), Some("alice"));
}

#[test]
fn client_refuses_an_existing_name_unless_forced() {
    let pki = TestPki::with_clients(&["alice"]);
    let certs = pki.cert_dir();
    let old = read(&pki.cert_dir().join("alice").join("client.crt"));
    let out = rcmd(&["pki", "client", "alice", "--dir", certs.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(old, read(&pki.cert_dir().join("alice").join("client.crt")));
    let out = rcmd(&["pki", "client", "alice", "--force", "--dir", certs.to_str().unwrap()]);
    assert!(out.status.success());
    assert_ne!(old, read(&pki.cert_dir().join("alice").join("client.crt")));
}

#[test]
fn every_unsafe_client_name_is_refused_clearly() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let long = "x".repeat(65);
    for (name, reason) in [
        ("", "empty"),
        (long.as_str(), "64 bytes"),
        (".", "not names"),
        ("..", "not names"),
        ("a/b", "`/`"),
        ("a\\b", "`/`"),
        ("tab\there", "control"),
        ("-rf", "start with `-`"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rcmd"))
            .args(["pki", "client", "--dir", certs.to_str().unwrap(), "--", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason) && stderr.lines().count() == 1, "{name:?}: {stderr}");
    }
    let entries: Vec<_> = std::fs::read_dir(&certs).unwrap().map(|e| e.unwrap().file_name()).collect();
    // The seven files of `pki init` and its lock.
    assert_eq!(entries.len(), 8, "nothing was created: {entries:?}");
}

#[test]
fn client_without_a_ca_says_to_run_init_first() {
    let dir = TempDir::new("no-ca");
    let out = rcmd(&["pki", "client", "alice", "--dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `rcmd pki init"));
}

#[test]
fn a_mismatched_or_corrupt_ca_key_is_named() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let certs = pki.cert_dir();
    std::fs::copy(other.cert_dir().join("ca.key"), certs.join("ca.key")).unwrap();
    let err = pki::issue_client_dir(&certs, &"alice".parse().unwrap(), 1, false).unwrap_err().to_string();
    assert!(err.contains("ca.key") && err.contains("does not match"), "{err}");
    std::fs::write(certs.join("ca.key"), "garbage").unwrap();
    let err = pki::issue_client_dir(&certs, &"alice".parse().unwrap(), 1, false).unwrap_err().to_string();
    assert!(err.contains("ca.key"), "{err}");
    std::fs::write(certs.join("ca.crt"), "garbage").unwrap();
    let err = pki::issue_client_dir(&certs, &"alice".parse().unwrap(), 1, false).unwrap_err().to_string();
    assert!(err.contains("ca.crt") && err.contains("PEM"), "{err}");
}

#[test]
fn loaders_name_the_file_and_the_problem() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    pki::load_server(&certs).unwrap();

    let other = TestPki::new();
    std::fs::copy(other.cert_dir().join("server.key"), certs.join("server.key")).unwrap();
    let err = pki::load_server(&certs).err().unwrap().to_string();
    assert!(err.contains("server.key") && err.contains("does not match"), "{err}");

    std::fs::remove_file(certs.join("server.crt")).unwrap();
    let err = pki::load_server(&certs).err().unwrap().to_string();
    assert!(err.contains("server.crt") && err.contains("missing"), "{err}");

    let expired = pki.expired_client().path().to_owned();
    let err = pki::load_client(&expired).err().unwrap().to_string();
    assert!(err.contains("client.crt") && err.contains("expired"), "{err}");

    let early = pki.not_yet_valid_client().path().to_owned();
    let err = pki::load_client(&early).err().unwrap().to_string();
    assert!(err.contains("client.crt") && err.contains("not valid before"), "{err}");
}

#[test]
fn invalid_sans_are_refused() {
    for bad in ["", "bad name", "-x.example", "a..b"] {
        assert!(bad.parse::<pki::San>().is_err(), "{bad:?}");
    }
    let out = rcmd(&["pki", "init", "--san", "bad name", "--dir", "/nonexistent/never"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad name"));
}

/// Runs `rcmd pki COMMAND NAME --dir certs` for every name at the same time.
fn all_at_once(certs: &Path, command: &str, names: &[String]) {
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            Command::new(env!("CARGO_BIN_EXE_rcmd"))
                .args(["pki", command, name, "--dir"])
                .arg(certs)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "pki {command}");
    }
}

#[test]
fn twenty_concurrent_client_commands_are_all_indexed_and_each_revocable() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let names: Vec<String> = (0..20).map(|i| format!("rcmdt-many-{i}")).collect();
    all_at_once(&certs, "client", &names);
    let index = pki::Index::load(&certs).unwrap();
    for name in &names {
        assert_eq!(index.certificates.iter().filter(|e| &e.cn == name).count(), 1, "{name} in the index");
    }
    all_at_once(&certs, "revoke", &names);
    let index = pki::Index::load(&certs).unwrap();
    let revoked =
        index.certificates.iter().filter(|e| e.cn.starts_with("rcmdt-many-") && e.revoked_at.is_some());
    assert_eq!(revoked.count(), 20, "every one revoked, none lost");
}

#[test]
fn an_existing_cert_folder_is_made_0700() {
    let dir = TempDir::new("loose-ca");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut options = InitOptions::new(&certs);
    options.client = "owner".parse().unwrap();
    pki::init(&options).unwrap();
    assert_eq!(mode(&certs), 0o700);
    std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755)).unwrap();
    pki::issue_client_dir(&certs, &"alice".parse().unwrap(), 30, false).unwrap();
    assert_eq!((mode(&certs), mode(&certs.join("alice"))), (0o700, 0o700));
}

#[test]
fn a_reader_never_sees_a_key_and_certificate_from_different_pairs() {
    let pki = TestPki::with_clients(&["alice"]);
    let (certs, alice) = (pki.cert_dir(), pki.cert_dir().join("alice"));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [certs.clone(), alice.clone()]
        .into_iter()
        .map(|dir| {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let mut loads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || loads == 0 {
                    let loaded = if dir.ends_with("certs") {
                        pki::load_server(&dir).map(drop)
                    } else {
                        pki::load_client(&dir).map(drop)
                    };
                    if let Err(e) = loaded {
                        panic!("a reader saw a broken pair in {}: {e}", dir.display());
                    }
                    loads += 1;
                }
                loads
            })
        })
        .collect();
    for _ in 0..15 {
        pki::renew(&certs, pki::Renewal::Server, 30).unwrap();
        pki::renew(&certs, pki::Renewal::Client("alice"), 30).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
}

#[test]
fn a_pair_replacement_cut_between_its_renames_is_finished_by_the_next_reader() {
    let pki = TestPki::with_clients(&["alice"]);
    let alice = pki.cert_dir().join("alice");
    let old_cert = read(&alice.join("client.crt"));
    pki::renew(&pki.cert_dir(), pki::Renewal::Client("alice"), 30).unwrap();
    let new_cert = read(&alice.join("client.crt"));
    // What a crash right after the key's rename leaves: the new key, the old
    // certificate, and the new one still in its temp file.
    std::fs::write(alice.join(".client.crt.tmp"), &new_cert).unwrap();
    std::fs::write(alice.join("client.crt"), &old_cert).unwrap();

    pki::load_client(&alice).expect("the reader finishes the pair and loads it");
    assert_eq!(read(&alice.join("client.crt")), new_cert);
    assert!(!alice.join(".client.crt.tmp").exists());
}

#[test]
fn a_renewed_certificate_is_indexed_even_if_writing_its_files_fails() {
    let pki = TestPki::with_clients(&["alice"]);
    let (certs, alice) = (pki.cert_dir(), pki.cert_dir().join("alice"));
    let indexed = || pki::Index::load(&certs).unwrap().certificates.len();
    let before = indexed();
    // A directory where the new key's temp file goes: the write fails.
    std::fs::create_dir(alice.join(".client.key.tmp")).unwrap();
    assert!(pki::renew(&certs, pki::Renewal::Client("alice"), 30).is_err());
    assert_eq!(indexed(), before + 1, "issued, so indexed and revocable");
}

#[test]
fn pki_server_writes_a_host_folder_listed_renewable_and_revocable() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let dir = certs.to_str().unwrap();
    let out = rcmd(&["pki", "server", "web1", "--san", "10.9.0.1", "--dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = certs.join("servers/web1");
    let mut files: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    files.retain(|f| !f.starts_with('.'));
    assert_eq!(files, ["ca.crt", "server.crt", "server.key"], "the CA key never leaves the cert dir");
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&folder.join("server.key")), 0o600);
    let info = CertInfo::parse(&der(&folder.join("server.crt"))).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("web1"));
    assert!(info.server_auth && !info.client_auth && !info.is_ca);
    assert_eq!(info.dns_names, ["web1"]);
    assert_eq!(info.ip_addresses, ["10.9.0.1".parse::<std::net::IpAddr>().unwrap()]);
    pki::load_server(&folder).expect("the folder is what `rcmd serve --certs` takes");

    let again = rcmd(&["pki", "server", "web1", "--dir", dir]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let renewed = rcmd(&["pki", "renew", "server", "web1", "--dir", dir]);
    assert!(renewed.status.success(), "{}", String::from_utf8_lossy(&renewed.stderr));
    let new = CertInfo::parse(&der(&folder.join("server.crt"))).unwrap();
    assert_ne!(new.serial, info.serial);
    assert_eq!((new.dns_names, new.ip_addresses), (info.dns_names, info.ip_addresses), "same names");

    let index = pki::Index::load(&certs).unwrap();
    let web1: Vec<_> = index.certificates.iter().filter(|e| e.cn == "web1").collect();
    assert_eq!(web1.len(), 2, "both certificates are in the index");
    assert!(web1.iter().all(|e| e.kind == Kind::Server));
    let listed = String::from_utf8(rcmd(&["pki", "list", "--dir", dir]).stdout).unwrap();
    assert_eq!(listed.lines().filter(|l| l.starts_with("web1 ") && l.contains(" server ")).count(), 2);
    assert!(rcmd(&["pki", "revoke", "web1", "--dir", dir]).status.success());
    let index = pki::Index::load(&certs).unwrap();
    assert!(index.certificates.iter().filter(|e| e.cn == "web1").all(|e| e.revoked_at.is_some()));
    assert!(certs.join("crl.pem").exists());
    // The host's folder, which is what the host reads, has the same CRL.
    assert_eq!(read(&folder.join("crl.pem")), read(&certs.join("crl.pem")));
}

#[test]
fn a_name_shared_by_a_client_and_a_host_is_not_revoked_by_name_alone() {
    let pki = TestPki::with_clients(&["shared"]);
    let certs = pki.cert_dir();
    let dir = certs.to_str().unwrap();
    assert!(rcmd(&["pki", "server", "shared", "--san", "10.9.0.2", "--dir", dir]).status.success());
    let out = rcmd(&["pki", "revoke", "shared", "--dir", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("by its serial"), "{out:?}");
    let index = pki::Index::load(&certs).unwrap();
    assert!(index.certificates.iter().all(|e| e.revoked_at.is_none()), "nothing revoked");
    let host = index.certificates.iter().find(|e| e.cn == "shared" && e.kind == Kind::Server).unwrap();
    assert!(rcmd(&["pki", "revoke", &host.serial.to_string(), "--dir", dir]).status.success());
    let index = pki::Index::load(&certs).unwrap();
    let revoked: Vec<Kind> =
        index.certificates.iter().filter(|e| e.revoked_at.is_some()).map(|e| e.kind).collect();
    assert_eq!(revoked, [Kind::Server], "only the host's");
}

#[test]
fn a_client_cannot_be_named_after_the_hosts_folder() {
    let pki = TestPki::new();
    let out = rcmd(&["pki", "client", "servers", "--dir", pki.cert_dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hosts' folders"), "{out:?}");
    assert!(!pki.cert_dir().join("servers").exists());
}

#[test]
fn pki_server_mistakes_get_one_line_that_says_what_to_do() {
    let pki = TestPki::new();
    let dir = pki.cert_dir().to_str().unwrap().to_owned();
    for (args, says) in [
        (vec!["server", "web 1"], "invalid server name"),
        (vec!["server", "../x"], "invalid server name"),
        (vec!["server", "under_score"], "--san"),
        (vec!["renew", "server", "nosuch"], "pki server nosuch"),
        (vec!["renew", "alice", "extra"], "only `renew server HOST`"),
    ] {
        let out = rcmd(&[&["pki"], &args[..], &["--dir", &dir]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!pki.cert_dir().join("servers/under_score").exists());
}

#[test]
fn twenty_concurrent_server_commands_are_all_indexed() {
    let pki = TestPki::new();
    let certs = pki.cert_dir();
    let names: Vec<String> = (0..20).map(|i| format!("rcmdt-srv-{i}")).collect();
    all_at_once(&certs, "server", &names);
    let index = pki::Index::load(&certs).unwrap();
    for name in &names {
        assert_eq!(index.certificates.iter().filter(|e| &e.cn == name).count(), 1, "{name} in the index");
        pki::load_server(&certs.join("servers").join(name)).unwrap();
    }
}
