//! The Helm chart with the bytes in a bucket: the nginx.conf it renders is the bucket variant
//! `mediagate nginx-config` prints and serves files from a real S3 server; with a Redis store the
//! pods need no volume at all, and the bucket is reached through a ServiceAccount or a Secret.

use serde_json::json;

use crate::chart::{chart, chart_dir, normalized, owner_only_through};
use crate::gate::fixture;
use crate::support::app::{Stack, StoreKind};
use crate::support::nginx::Nginx;

#[test]
fn the_charts_bucket_variant_is_the_snippet_and_serves_from_the_bucket() {
    let s = Stack::on_bucket(StoreKind::Embedded, Vec::new());
    let f = fixture(&s);
    let endpoint = s.s3.as_ref().unwrap().endpoint();
    let auth = s.app.auth_port;
    let render = |port: u16| {
        let values = json!({
            "nginx": {"bindAddress": "127.0.0.1", "port": port},
            "authPort": auth,
            "authSocket": "",
            "storage": {"s3": {"url": "s3://media-bucket/site", "endpoint": endpoint, "allowHttp": true}},
        });
        let (ok, conf, err) = chart(&["nginx", &chart_dir(), &values.to_string()]);
        assert!(ok, "{err}");
        conf
    };
    let nginx = Nginx::start(&s.dir.path().join("chart-nginx"), render);
    let conf = render(nginx.port);
    assert!(
        conf.contains("try_files /.mediagate-never-exists @mediagate_bucket;"),
        "{conf}"
    );
    // An address endpoint over plain HTTP: no resolver, no TLS settings.
    assert!(
        !conf.contains("resolver ") && !conf.contains("proxy_ssl_verify"),
        "{conf}"
    );
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args([
            "nginx-config",
            "--listen",
            &format!("127.0.0.1:{}", nginx.port),
        ])
        .args(["--auth-upstream", &format!("127.0.0.1:{auth}")])
        .args(["--error-log", "stderr", "--access-log", "/dev/stdout"])
        .env_clear()
        .envs(s.s3.as_ref().unwrap().env())
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert_eq!(
        normalized(&conf),
        normalized(&String::from_utf8_lossy(&printed.stdout))
    );

    owner_only_through(nginx.port, &s, &f);
}

#[test]
fn a_bucket_on_redis_needs_no_volume_and_reaches_the_bucket_as_told() {
    let render = |values: serde_json::Value| -> Vec<serde_json::Value> {
        let (ok, out, err) = chart(&["render", &chart_dir(), &values.to_string()]);
        assert!(ok, "{values}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let of = |docs: &[serde_json::Value], kind: &str| {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let docs = render(json!({
        "replicaCount": 3,
        "store": {"url": "redis://redis:6379/0"},
        "storage": {"s3": {"url": "s3://example-media/site", "region": "eu-west-1"}},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/media"}},
    }));
    assert!(of(&docs, "PersistentVolumeClaim").is_empty());
    let pod = &of(&docs, "Deployment")[0]["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["name"] != "data"), "{volumes:?}");
    let sa = &of(&docs, "ServiceAccount")[0];
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::1:role/media"
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(
        env.iter().all(|e| e["name"] != "AWS_ACCESS_KEY_ID"),
        "no static keys: {env:?}"
    );
    let toml = of(&docs, "ConfigMap")[0]["data"]["mediagate.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        toml.contains("url = \"s3://example-media/site\"")
            && toml.contains("region = \"eu-west-1\""),
        "{toml}"
    );
    let conf = of(&docs, "ConfigMap")[0]["data"]["nginx.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    // AWS's endpoints are host names, over TLS.
    assert!(
        conf.contains("resolver kube-dns.kube-system.svc.cluster.local valid=30s;"),
        "{conf}"
    );
    assert!(conf.contains("proxy_ssl_verify on;"), "{conf}");

    // Static keys: in the chart's Secret, or an existing one, as variables.
    let docs = render(json!({
        "storage": {"s3": {"url": "s3://example-media", "accessKeyId": "AKID", "secretAccessKey": "s3cr3t"}},
    }));
    let secret = &of(&docs, "Secret")[0];
    assert_eq!(secret["stringData"]["aws-access-key-id"], "AKID");
    let env =
        of(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "AWS_SECRET_ACCESS_KEY"),
        "{env}"
    );
    // The embedded store still needs the volume; the bytes do not.
    assert_eq!(of(&docs, "PersistentVolumeClaim").len(), 1);
    let (ok, _, err) = chart(&[
        "render",
        &chart_dir(),
        &json!({"storage": {"s3": {"url": "s3://x"}}}).to_string(),
    ]);
    assert!(!ok && err.contains("url"), "{err}");
}
