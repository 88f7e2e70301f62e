//! Fuzzes cookie handling: the Cookie header parsing that picks one session value, and the
//! express-session signature check. Nothing may verify without the secret.
#![no_main]

use actix_web::test::TestRequest;
use libfuzzer_sys::fuzz_target;
use mediagate::sessions::{express, single_cookie};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(header) {
        let req = TestRequest::default()
            .insert_header(("cookie", value))
            .to_http_request();
        if let Some(v) = single_cookie(&req, "connect.sid") {
            assert!(v.len() <= mediagate::sessions::MAX_CREDENTIAL);
        }
    }
    let secrets = [SecretString::from("keyboard cat".to_owned())];
    // A real signature for "hello" under "keyboard cat" is astronomically unlikely to be found.
    if let Some(id) = express::unsign(header, &secrets) {
        assert!(header.starts_with("s:") && header.contains(id));
    }
});
