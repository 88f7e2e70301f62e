//! Fuzzes JWT verification: arbitrary tokens never panic and never verify without the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::sessions::SourceSettings;
use mediagate::sessions::jwt::JwtSource;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let settings = SourceSettings::Jwt {
        cookie: None,
        algorithms: vec!["HS256".into()],
        secret: Some(SecretString::from(
            "fuzz-secret-0123456789abcdef-0123456789".to_owned(),
        )),
        public_key_file: None,
        user_claim: "sub".into(),
        roles_claim: Some("roles".into()),
        issuer: None,
        audience: None,
        leeway_secs: 10,
    };
    let source = JwtSource::new(&settings).expect("valid settings");
    assert!(
        source.verify(token).is_none(),
        "a token verified without the key"
    );
});
