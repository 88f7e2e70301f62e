//! The harness' own guard against port races: a start counts only when the child itself
//! listens on its port, not when some other process answers there.

use std::net::TcpListener;
use std::process::Command;

use crate::support::listens_on;

#[test]
fn a_port_counts_only_for_the_process_that_listens_on_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    assert!(listens_on(std::process::id(), port));

    // Another live process does not own it, and no one owns a port once it is closed.
    let mut other = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    assert!(!listens_on(other.id(), port));
    drop(listener);
    assert!(!listens_on(std::process::id(), port));
    let _ = other.kill();
    let _ = other.wait();
}
