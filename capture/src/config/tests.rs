use std::path::Path;

use clap::Parser;

use super::*;

const REQUIRED: [&str; 6] = ["--baseline", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2", "--out", "/tmp/out"];

/// The flags as the command line gives them.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

/// Parse a command line; a bad value comes back as the sentence printed after `error: `.
fn parse(args: &[&str]) -> std::result::Result<Flags, String> {
    Cli::try_parse_from(std::iter::once("capture").chain(args.iter().copied()))
        .map(|c| c.flags)
        .map_err(|e| e.to_string().trim_start_matches("error: ").trim_end().to_owned())
}

/// The required flags and then `args`.
fn with_required<'a>(args: &[&'a str]) -> Vec<&'a str> {
    REQUIRED.iter().copied().chain(args.iter().copied()).collect()
}

fn flags() -> Flags {
    parse(&REQUIRED).expect("valid flags")
}

/// The error of a command line (and a file), wherever it is found: parsing a flag, parsing the
/// file or resolving the two.
fn err(args: &[&str], toml: Option<&str>) -> String {
    let flags = match parse(args) {
        Ok(flags) => flags,
        Err(e) => return e,
    };
    let file =
        toml.map(|t| FileConfig::parse(t, Path::new("capture.toml")).map(|f| (PathBuf::from("capture.toml"), f)));
    let r = match file {
        Some(Err(e)) => Err(e),
        Some(Ok(f)) => Config::resolve_with(flags, Some(f)),
        None => Config::resolve_with(flags, None),
    };
    r.expect_err("rejected").to_string()
}

#[test]
fn defaults_resolve() {
    let c = Config::resolve_with(flags(), None).expect("valid");
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.sample_rate, 1.0);
    assert_eq!(c.mirror_methods, [Method::GET, Method::HEAD, Method::OPTIONS]);
    assert_eq!(c.marker_header.as_ref().map(HeaderName::as_str), Some(DEFAULT_MARKER_HEADER));
    assert_eq!(c.mirror_timeout, Duration::from_secs(5));
    assert!(c.summary()["redact"]["headers"].as_array().is_some_and(|h| h.len() == 5));
}

#[test]
fn flags_win_over_the_file() {
    let toml = "canary = \"http://10.0.0.1:80\"\n[sampling]\nrate = 0.5\n[mirror]\nmethods = [\"GET\", \"POST\"]\n";
    let f = FileConfig::parse(toml, Path::new("c.toml")).expect("parses");
    let fl = parse(&with_required(&["--sample-rate", "0.25"])).expect("valid flags");
    let c = Config::resolve_with(fl, Some(("c.toml".into(), f))).expect("valid");
    assert_eq!(c.sample_rate, 0.25);
    assert_eq!(c.canary.to_string(), "http://127.0.0.1:2");
    assert_eq!(c.mirror_methods, [Method::GET, Method::POST]);
}

#[test]
fn errors_name_the_flag_or_key() {
    assert!(err(&with_required(&["--sample-rate", "1.5"]), None).starts_with("--sample-rate must be between 0 and 1"));
    let e = err(&REQUIRED, Some("[sampling]\nrat = 1\n"));
    assert!(e.contains("capture.toml line 2") && e.contains("unknown field `rat`"), "{e}");
    let e = err(&REQUIRED, Some("[mirror]\ntimeout = \"5 parsecs\"\n"));
    assert!(e.starts_with("`mirror.timeout` in capture.toml must be a duration"), "{e}");
    assert!(err(&REQUIRED[2..], None).starts_with("--baseline is required"));
    let ftp_canary = ["--baseline", "http://127.0.0.1:1", "--canary", "ftp://x", "--out", "/tmp/out"];
    assert!(err(&ftp_canary, None).starts_with("--canary must be an http:// or https:// URL"));
    assert!(err(&with_required(&["--mirror-methods", "GET,FETCH THIS"]), None).starts_with("--mirror-methods lists"));
    assert!(err(&with_required(&["--tls-cert", "c.pem"]), None).starts_with("--tls-key is required"));
    let e = err(&with_required(&["--hash-key-env", "SHADOWDIFF_TEST_SURELY_UNSET"]), None);
    assert!(e.starts_with("--hash-key-env"));
    assert!(err(&with_required(&["--include", "api/**"]), None).starts_with("--include"));
}

/// The documented example names every key, and every key it names exists.
#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../docs/capture.md");
    let start = doc.find("```toml\n").expect("a TOML block") + 8;
    let text = &doc[start..start + doc[start..].find("```").expect("closed")];
    let f = FileConfig::parse(text, Path::new("docs/capture.md")).expect("the example parses");
    assert_eq!(f.recorder.zstd_level, Some(1));
    assert_eq!(f.redact.json_paths.len(), 2);
    // Resolve it, minus the key file that only exists in production.
    let mut f = f;
    f.redact.key_file = None;
    f.redact.mode = None;
    f.tls = TlsSection::default();
    f.upstream.ca_file = None;
    let c = Config::resolve_with(Flags::default(), Some(("capture.toml".into(), f))).expect("resolves");
    assert_eq!(c.recorder.queue_bytes, 256 * 1024 * 1024);
    assert_eq!(c.sample_key, Some(SampleKey::Header(HeaderName::from_static("x-user-id"))));
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
    assert!(parse_duration("-1s").is_err());
    assert_eq!(parse_size("64KiB"), Ok(65536));
    assert_eq!(parse_size("1MB"), Ok(1_000_000));
    assert_eq!(parse_size("10_000"), Ok(10_000));
    assert!(parse_size("1.5").is_err());
}

#[test]
fn targets_never_take_credentials_or_queries() {
    assert!(Target::parse("http://u:p@host").is_err());
    assert!(Target::parse("http://host/?a=1").is_err());
    let t = Target::parse("https://host:8443/base/").expect("valid");
    assert_eq!(t.uri_for("/x?y=1").expect("uri").to_string(), "https://host:8443/base/x?y=1");
}

#[test]
fn targets_name_their_protocol_by_scheme() {
    use super::Protocol;
    let cases = [
        ("http://h:1", "http", Protocol::Auto, "http://h:1"),
        ("https://h:1/b", "https", Protocol::Auto, "https://h:1/b"),
        ("h2c://h:1", "http", Protocol::H2c, "h2c://h:1"),
        ("H2://h:1", "https", Protocol::H2, "h2://h:1"),
        ("http1+https://h:1", "https", Protocol::Http1, "http1+https://h:1"),
        ("h2c+http://h:1", "http", Protocol::H2c, "h2c://h:1"),
        ("auto+https://h:1", "https", Protocol::Auto, "https://h:1"),
    ];
    for (url, scheme, protocol, shown) in cases {
        let t = Target::parse(url).expect(url);
        assert_eq!((t.scheme.as_str(), t.protocol, t.to_string().as_str()), (scheme, protocol, shown), "{url}");
        // The upstream URI is always plain http or https: the protocol is the client's business.
        assert!(t.uri_for("/p").expect("uri").to_string().starts_with(&format!("{scheme}://")));
        assert_eq!(Target::parse(&t.to_string()), Ok(t), "{url} shown as it parses");
    }
    for (url, says) in [
        ("h2c+https://h", "use h2:// for HTTP/2 over TLS"),
        ("h2+http://h", "use h2c:// for HTTP/2 without TLS"),
        ("h3+https://h", "unknown protocol `h3`"),
        ("ftp://h", "not ftp://"),
    ] {
        let e = Target::parse(url).expect_err(url);
        assert!(e.contains(says), "{url}: {e}");
    }
    // The same parser behind the flag and the key.
    let file: FileConfig = toml::from_str("baseline = \"h2c://127.0.0.1:50051\"").expect("file");
    assert_eq!(file.baseline.map(|t| t.protocol), Some(Protocol::H2c));
}

/// A duration or size means the same as a flag and as a key, whether the key holds a string or
/// a number, and a bad one is the same sentence after the flag's name or the key's.
#[test]
fn flags_and_keys_read_values_alike() {
    let cases = [
        ("--mirror-timeout", "[mirror]\ntimeout", "0s"),
        ("--mirror-timeout", "[mirror]\ntimeout", "1h30m"),
        ("--drain-timeout", "[shutdown]\ndrain_timeout", "1.5"),
        ("--rotate-age", "[recorder]\nrotate_age", "250ms"),
        ("--max-request-body", "[limits]\nmax_request_body", "1MiB"),
        ("--max-response-body", "[limits]\nmax_response_body", "0"),
        ("--queue", "[recorder]\nqueue", "10k"),
        ("--queue-bytes", "[recorder]\nqueue_bytes", "1.5KiB"),
        ("--rotate-bytes", "[recorder]\nrotate_bytes", "10_000"),
        ("--max-connections", "[limits]\nmax_connections", "10k"),
        ("--max-header-size", "[limits]\nmax_header_size", "16KiB"),
        ("--header-read-timeout", "[limits]\nheader_read_timeout", "2s"),
        ("--idle-timeout", "[limits]\nidle_timeout", "90s"),
        ("--max-concurrent-streams", "[limits]\nmax_concurrent_streams", "100"),
        ("--abuse-penalty", "[limits]\nabuse_penalty", "0s"),
        ("--abuse-penalty", "[limits]\nabuse_penalty", "2s"),
    ];
    for (flag, key, text) in cases {
        let from_flag = Config::resolve_with(parse(&with_required(&[flag, text])).expect(flag), None).expect(flag);
        let file = FileConfig::parse(&format!("{key} = \"{text}\"\n"), Path::new("c.toml")).expect(key);
        let from_key = Config::resolve_with(flags(), Some(("c.toml".into(), file))).expect(key);
        assert_eq!(format!("{from_flag:?}"), format!("{from_key:?}"), "{flag} {text}");
    }
    // A number in the file reads as the same text on the command line.
    let file = FileConfig::parse("[mirror]\ntimeout = 3\n[limits]\nmax_request_body = 4096\n", Path::new("c.toml"));
    let file = file.expect("numbers parse");
    assert_eq!((file.mirror.timeout, file.limits.max_request_body), (Some(Duration::from_secs(3)), Some(4096)));

    let bad = [
        ("--mirror-timeout", "[mirror]\ntimeout", "mirror.timeout", "soon", "must be a duration such as 500ms"),
        ("--max-request-body", "[limits]\nmax_request_body", "limits.max_request_body", "1.5", "must be a whole"),
        ("--queue", "[recorder]\nqueue", "recorder.queue", "0", "must be at least 1, not 0"),
        ("--rotate-age", "[recorder]\nrotate_age", "recorder.rotate_age", "0s", "must be longer than zero"),
        ("--max-connections", "[limits]\nmax_connections", "limits.max_connections", "0", "must be at least 1, not 0"),
        (
            "--header-read-timeout",
            "[limits]\nheader_read_timeout",
            "limits.header_read_timeout",
            "0s",
            "must be longer than zero",
        ),
        ("--idle-timeout", "[limits]\nidle_timeout", "limits.idle_timeout", "0ms", "must be longer than zero"),
    ];
    for (flag, key, name, text, message) in bad {
        assert!(err(&with_required(&[flag, text]), None).starts_with(&format!("{flag} {message}")), "{flag} {text}");
        let e = err(&REQUIRED, Some(&format!("{key} = \"{text}\"\n")));
        assert!(e.starts_with(&format!("`{name}` in capture.toml {message}")), "{e}");
    }
}

/// Serde's own errors keep the file and line; values that parse but break a rule name the key.
#[test]
fn file_errors_name_the_line_or_the_key() {
    let e = err(&REQUIRED, Some("[mirror]\nmethods = 5\n"));
    assert!(e.starts_with("capture.toml line 2: invalid type"), "{e}");
    let e = err(&REQUIRED, Some("listen = \"nowhere\"\n"));
    assert_eq!(e, "`listen` in capture.toml must be an address such as 127.0.0.1:8080 or :8080, not nowhere");
    let e = err(&REQUIRED, Some("[redact]\nmode = \"scramble\"\n"));
    assert_eq!(e, "`redact.mode` in capture.toml must be `mask` or `hash`, not `scramble`");
    let e = err(&REQUIRED, Some("[recorder]\nzstd_level = 23\n"));
    assert_eq!(e, "`recorder.zstd_level` in capture.toml must be between 1 and 22, not 23");
    let e = err(&REQUIRED, Some("[redact]\nmode = \"hash\"\n"));
    assert!(e.starts_with("`redact.mode` in capture.toml is `hash` but no key is given"), "{e}");
    let e = err(&REQUIRED, Some("listen = [\n"));
    assert!(e.starts_with("capture.toml line "), "{e}");
}

#[test]
fn none_turns_off_the_admin_listener_and_the_marker() {
    let c = Config::resolve_with(parse(&with_required(&["--admin-listen", ":9090"])).expect("valid"), None);
    assert_eq!(c.expect("valid").admin_listen, Some(SocketAddr::from(([0, 0, 0, 0], 9090))));
    let fl = parse(&with_required(&["--admin-listen", "none", "--marker-header", "none"])).expect("valid");
    let file = FileConfig::parse("admin_listen = \"127.0.0.1:9\"\n", Path::new("c.toml")).expect("parses");
    let c = Config::resolve_with(fl, Some(("c.toml".into(), file))).expect("valid");
    assert_eq!((c.admin_listen, c.marker_header), (None, None));
}

#[test]
fn stream_and_decoding_limits() {
    let c = Config::resolve_with(flags(), None).expect("valid");
    assert_eq!(c.max_body_duration, DEFAULT_MAX_BODY_DURATION);
    assert_eq!(c.redact.max_decoded_body, crate::redact::DEFAULT_MAX_DECODED_BODY);
    let toml = "[limits]\nmax_body_duration = \"2m\"\nmax_decoded_body = \"1MiB\"\n";
    let f = FileConfig::parse(toml, Path::new("c.toml")).expect("parses");
    let c = Config::resolve_with(flags(), Some(("c.toml".into(), f.clone()))).expect("valid");
    assert_eq!((c.max_body_duration, c.redact.max_decoded_body), (Duration::from_secs(120), 1 << 20));
    let fl = parse(&with_required(&["--max-body-duration", "10s", "--max-decoded-body", "64KiB"])).expect("flags");
    let c = Config::resolve_with(fl, Some(("c.toml".into(), f))).expect("valid");
    assert_eq!((c.max_body_duration, c.redact.max_decoded_body), (Duration::from_secs(10), 65536));
    assert!(
        err(&with_required(&["--max-body-duration", "0s"]), None).starts_with("--max-body-duration must be longer")
    );
    let e = err(&REQUIRED, Some("[limits]\nmax_decoded_body = 0\n"));
    assert!(e.starts_with("`limits.max_decoded_body` in capture.toml must be at least 1"), "{e}");
}

#[test]
fn read_only_grpc_methods_come_from_the_flag_or_the_file() {
    let toml = "[mirror]\ngrpc_methods = [\"/shop.v1.Shop/Get*\"]\n";
    let f = FileConfig::parse(toml, Path::new("c.toml")).expect("parses");
    let c = Config::resolve_with(flags(), Some(("c.toml".into(), f.clone()))).expect("valid");
    assert_eq!(c.read_only_posts.grpc_methods, ["/shop.v1.Shop/Get*"]);
    assert!(!c.read_only_posts.is_off());
    assert_eq!(c.summary()["mirror"]["grpc_methods"], serde_json::json!(["/shop.v1.Shop/Get*"]));
    let fl = parse(&with_required(&["--mirror-grpc", "/shop.v1.Shop/List*"])).expect("flags");
    let c = Config::resolve_with(fl, Some(("c.toml".into(), f))).expect("valid");
    assert_eq!(c.read_only_posts.grpc_methods, ["/shop.v1.Shop/List*"], "the flag replaces the key");
}

#[test]
fn read_only_posts_are_off_by_default_and_need_their_partners() {
    let c = Config::resolve_with(flags(), None).expect("valid");
    assert!(c.read_only_posts.is_off());
    let toml = "[mirror]\ngraphql_paths = [\"/graphql\"]\ngraphql_persisted = [\"GetUser\"]\n\
                jsonrpc_paths = [\"/rpc\"]\njsonrpc_methods = [\"eth_call\"]\n";
    let f = FileConfig::parse(toml, Path::new("c.toml")).expect("parses");
    let c = Config::resolve_with(flags(), Some(("c.toml".into(), f.clone()))).expect("valid");
    assert_eq!(c.read_only_posts.graphql_paths, ["/graphql"]);
    assert_eq!(c.read_only_posts.graphql_persisted, ["GetUser"]);
    assert_eq!(c.read_only_posts.jsonrpc_methods, ["eth_call"]);
    assert_eq!(c.summary()["mirror"]["jsonrpc_paths"], serde_json::json!(["/rpc"]));
    let fl =
        parse(&with_required(&["--mirror-jsonrpc", "/api/rpc", "--mirror-jsonrpc-method", "getBlock"])).expect("ok");
    let c = Config::resolve_with(fl, Some(("c.toml".into(), f))).expect("valid");
    assert_eq!(c.read_only_posts.jsonrpc_paths, ["/api/rpc"], "a flag's list replaces the key's");
    assert_eq!(c.read_only_posts.jsonrpc_methods, ["getBlock"]);
    let e = err(&with_required(&["--mirror-jsonrpc", "/rpc"]), None);
    assert!(e.starts_with("--mirror-jsonrpc needs the read-only JSON-RPC methods"), "{e}");
    let e = err(&REQUIRED, Some("[mirror]\njsonrpc_methods = [\"eth_call\"]\n"));
    assert!(e.starts_with("`mirror.jsonrpc_methods` in capture.toml needs JSON-RPC paths"), "{e}");
    let e = err(&with_required(&["--mirror-graphql-persisted", "GetUser"]), None);
    assert!(e.starts_with("--mirror-graphql-persisted needs GraphQL paths"), "{e}");
    assert!(err(&with_required(&["--mirror-graphql", "graphql"]), None).starts_with("--mirror-graphql patterns match"));
    assert!(
        err(&with_required(&["--mirror-jsonrpc-method", " "]), None)
            .starts_with("--mirror-jsonrpc-method must not be empty")
    );
}
