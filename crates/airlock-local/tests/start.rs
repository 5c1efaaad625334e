//! `airlock-local` as a person starts it: a port another program holds is named, with the
//! flag that moves it, before anything is started.

use std::process::Command;

#[test]
fn a_port_in_use_is_named_with_its_flag_and_nothing_starts() {
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = held.local_addr().unwrap().port();
    let free = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (args, flag) in [
        (
            vec![
                "--port".to_string(),
                port.to_string(),
                "--router-port".into(),
                free.to_string(),
            ],
            "--port",
        ),
        (
            vec![
                "--port".to_string(),
                free.to_string(),
                "--router-port".into(),
                port.to_string(),
            ],
            "--router-port",
        ),
    ] {
        let state =
            std::env::temp_dir().join(format!("airlock-local-start-{}", std::process::id()));
        let out = Command::new(env!("CARGO_BIN_EXE_airlock-local"))
            .args(&args)
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains(&format!("port {port}")) && said.contains(&format!("with {flag} N")),
            "{said}"
        );
        assert!(!state.exists(), "nothing was started or written");
    }
}
