//! Regressions of security: what hostile servers, manifests and files cannot make sextant do.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[allow(unused_imports)]
use crate::sextant_snapshot;
use crate::support::estate::{Estate, Run, run_in};

/// Serves `router` on a fresh loopback port; returns `http://127.0.0.1:PORT`.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A manifest directory `manifests/` under `dir` with one vSphere connection to `url` and one
/// VM; `extra` is appended to the connection's spec.
fn vsphere_manifests(dir: &Path, url: &str, extra: &str) {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("estate.yaml"),
        format!(
            "kind: Connection\nname: vcenter\nspec:\n  type: vsphere\n  url: {url}\n  username: administrator@vsphere.local\n  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n  max_retries: 0\n{extra}---\nkind: VirtualMachine\nname: web-01\nspec:\n  power_state: POWERED_ON\n"
        ),
    )
    .unwrap();
}

/// Header names of every request that reached a server.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

async fn record(State(seen): State<Seen>, request: Request) -> StatusCode {
    let names = request
        .headers()
        .keys()
        .map(|name| name.as_str().to_string())
        .collect();
    seen.lock().unwrap().push(names);
    StatusCode::NOT_FOUND
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_reported_naming_both_urls_and_no_credential_follows_it() {
    // The second host logs every request and which headers it carried.
    let seen: Seen = Arc::default();
    let elsewhere = serve(
        axum::Router::new()
            .fallback(record)
            .with_state(seen.clone()),
    )
    .await;
    // The first host lets sextant log in (vSphere `POST /api/session` answers the session id
    // as a bare JSON string: the `/api` reference cited in the audit corrections of
    // `shared/api/README.md`), then redirects every API call to the second one, over plain
    // HTTP and with a query string.
    let target = format!("{elsewhere}/collect?stolen=1");
    let first = serve(axum::Router::new().fallback(move |request: Request| {
        let target = target.clone();
        async move {
            if request.uri().path() == "/api/session" {
                axum::Json(serde_json::json!("session-id-from-the-first-host")).into_response()
            } else {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header("location", target)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    vsphere_manifests(dir.path(), &first, "");

    let run = run_in(dir.path(), &["plan", "manifests"]).await;

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let reached = seen.lock().unwrap().clone();
    assert!(
        reached.is_empty(),
        "requests reached the second host, with headers {reached:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("{first}/api/vcenter/vm answered 302")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("to {elsewhere}/collect;")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("stolen"), "{}", run.stderr);
}

/// Runs the binary in `dir` with extra environment variables.
async fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = crate::support::estate::command_in(dir, args);
    for (name, value) in env {
        command.env(name, value);
    }
    Run::of(command.output().await.unwrap())
}

#[tokio::test]
async fn values_read_from_the_environment_are_never_echoed_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    // A secret used by mistake as a duration, and a URL whose credentials and query are secret.
    vsphere_manifests(
        dir.path(),
        "{ env: SEXTANT_T_URL }",
        "  timeout: { env: SEXTANT_T_VSPHERE_PASSWORD }\n  refresh_before_expiry: { env: SEXTANT_T_URL }\n",
    );
    let url = "https://admin:url-password-secret@vc.example.com/?session=url-query-secret";
    for command in ["validate", "plan"] {
        let run = run_with_env(
            dir.path(),
            &[command, "manifests"],
            &[("SEXTANT_T_URL", url)],
        )
        .await;
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        let output = format!("{}{}", run.stdout, run.stderr);
        for secret in [
            "vsphere-password-secret-4",
            "url-password-secret",
            "url-query-secret",
        ] {
            assert!(
                !output.contains(secret),
                "`{command}` printed {secret}:\n{output}"
            );
        }
        assert!(
            run.stderr.contains(
                "the value of environment variable `SEXTANT_T_VSPHERE_PASSWORD` is not a duration"
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "`spec.url`: the value of environment variable `SEXTANT_T_URL` holds credentials"
            ),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn connection_urls_with_credentials_a_query_or_an_invalid_port_are_refused_where_written() {
    for (url, problem) in [
        (
            "https://vc.example.com:99999",
            "is not a valid URL: invalid port number",
        ),
        (
            "https://vc.example.com/sdk?x=1",
            "has a query string or fragment",
        ),
        ("https://root:hunter2@vc.example.com", "holds credentials"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        vsphere_manifests(dir.path(), url, "");
        let run = run_in(dir.path(), &["validate", "manifests"]).await;
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("estate.yaml:5:8: `spec.url`: `https://")
                && run.stderr.contains(problem),
            "{url}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
}

/// `manifests/estate.yaml`: a vSphere connection to `url` whose password is `password` (a
/// secret reference), and one VM.
fn vsphere_with_password(dir: &Path, url: &str, password: &str) {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("estate.yaml"),
        format!(
            "kind: Connection\nname: vcenter\nspec:\n  type: vsphere\n  url: {url}\n  username: administrator@vsphere.local\n  password: {password}\n---\nkind: VirtualMachine\nname: web-01\nspec:\n  power_state: POWERED_ON\n"
        ),
    )
    .unwrap();
}

/// Runs the binary, failing the test if it takes longer than 30 s.
async fn run_quickly(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        run_with_env(dir, args, env),
    )
    .await
    .unwrap_or_else(|_| panic!("`sextant {}` hangs", args.join(" ")))
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_files_are_read_only_when_regular_and_small_and_dev_zero_or_a_fifo_fail_fast() {
    let estate = Estate::start(240.0).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("manifests/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    mkfifo(&secrets.join("fifo"));
    std::fs::write(secrets.join("huge"), "x".repeat(100 * 1024)).unwrap();
    for (password, problem) in [
        ("{ file: /dev/zero }", "`/dev/zero` is not a regular file"),
        (
            "{ file: secrets/fifo }",
            "secrets/fifo` is not a regular file",
        ),
        (
            "{ file: secrets/huge }",
            "secrets/huge` is larger than 64 KiB",
        ),
    ] {
        vsphere_with_password(dir.path(), &estate.sim.base_url, password);
        let run = run_quickly(
            dir.path(),
            &["plan", "--secret-dir", "/dev", "manifests"],
            &[],
        )
        .await;
        assert_eq!(run.code, 1, "{password}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(problem), "{password}: {}", run.stderr);
    }
}

#[tokio::test]
async fn the_manifest_walk_stays_in_its_folders_reads_only_regular_files_and_caps_their_size() {
    let dir = tempfile::tempdir().unwrap();
    vsphere_with_password(dir.path(), "https://vc.example.com", "{ env: P }");
    let manifests = dir.path().join("manifests");
    // A folder outside the manifests with a manifest that would fail validation.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("outside.yaml"), "kind: Nonsense\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), manifests.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/", manifests.join("root")).unwrap();
    // A symlink that stays inside is still followed.
    std::fs::create_dir_all(dir.path().join("manifests/real")).unwrap();
    std::fs::write(manifests.join("real/inside.yaml"), "kind: Nonsense\n").unwrap();
    std::os::unix::fs::symlink(manifests.join("real"), manifests.join("alias")).unwrap();
    mkfifo(&manifests.join("x.yaml"));
    // Sparse: as large as it says, without using the disk.
    std::fs::File::create(manifests.join("big.yaml"))
        .unwrap()
        .set_len(129 * 1024 * 1024)
        .unwrap();

    let run = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;

    assert!(!run.stderr.contains("outside.yaml"), "{}", run.stderr);
    sextant_snapshot!("security-manifest-walk", run);
}

#[tokio::test]
async fn secret_files_outside_the_manifest_folders_are_read_only_from_directories_the_operator_names()
 {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("vsphere-password");
    std::fs::write(&secret, "outside-secret").unwrap();
    vsphere_with_password(
        dir.path(),
        "https://vc.example.com",
        &format!("{{ file: {} }}", secret.display()),
    );
    let refused = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    sextant_snapshot!("security-secret-file-outside", refused);
    let outside_dir = outside.path().to_str().unwrap();
    let flag = run_quickly(
        dir.path(),
        &["validate", "--secret-dir", outside_dir, "manifests"],
        &[],
    )
    .await;
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    let env = run_quickly(
        dir.path(),
        &["validate", "manifests"],
        &[("SEXTANT_SECRET_DIRS", outside_dir)],
    )
    .await;
    assert_eq!(env.code, 0, "{}", env.stderr);

    // A symlink inside the folders does not lead a secret out of them.
    std::os::unix::fs::symlink(&secret, dir.path().join("manifests/pw")).unwrap();
    vsphere_with_password(dir.path(), "https://vc.example.com", "{ file: pw }");
    let linked = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    sextant_snapshot!("security-secret-file-linked-outside", linked);
}

#[tokio::test]
async fn token_files_are_written_only_inside_the_manifest_folders_and_a_directory_is_refused() {
    let token = |file: &str| {
        format!(
            "kind: Connection\nname: vcd\nspec:\n  type: vcd\n  url: https://vcd.example.com\n  username: administrator\n  password: {{ env: P }}\n---\nkind: VcdApiToken\nname: ci\nspec:\n  file: {file}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(manifests.join("tokens")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("ci.json");
    std::fs::write(
        manifests.join("vcd.yaml"),
        token(&outside_file.display().to_string()),
    )
    .unwrap();
    let refused = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("vcd.yaml:12:9: `spec.file`: `/")
            && refused.stderr.contains("is outside the manifest folders"),
        "{}",
        refused.stderr
    );
    let allowed = run_quickly(
        dir.path(),
        &[
            "validate",
            "--token-dir",
            outside.path().to_str().unwrap(),
            "manifests",
        ],
        &[],
    )
    .await;
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);

    std::fs::write(manifests.join("vcd.yaml"), token("tokens")).unwrap();
    let directory = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    assert_eq!(directory.code, 1, "{}", directory.stderr);
    assert!(
        directory
            .stderr
            .contains("vcd.yaml:12:9: `spec.file`: `tokens` is a directory"),
        "{}",
        directory.stderr
    );
}

/// Characters that move a terminal's cursor, rewrite a line or reorder text.
const FORGING: [char; 4] = ['\u{1b}', '\r', '\u{202e}', '\u{2066}'];

fn assert_no_forging_characters(what: &str, text: &str) {
    for c in FORGING {
        assert!(
            !text.contains(c),
            "{what} holds U+{:04X} raw:\n{text}",
            c as u32
        );
    }
}

#[tokio::test]
async fn names_with_control_or_bidi_characters_are_refused_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    vsphere_with_password(dir.path(), "https://vc.example.com", "{ env: P }");
    std::fs::write(
        dir.path().join("manifests/vms.yaml"),
        "kind: VirtualMachine\nname: \"db\\e[2J\\rAll checks passed\"\nspec: {}\n---\nkind: VirtualMachine\nname: \"gpj.\\u202Eexe\"\nspec: {}\n---\nkind: VirtualMachine\nname: \"line\\nbreak\"\nspec: {}\n",
    )
    .unwrap();
    let run = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_no_forging_characters("stderr", &run.stderr);
    for expected in [
        r"vms.yaml:2:7: `name`: `db\u{1b}[2J\rAll checks passed` holds a control or invisible character (U+001B)",
        r"vms.yaml:6:7: `name`: `gpj.\u{202e}exe` holds a control or invisible character (U+202E)",
        r"vms.yaml:10:7: `name`: `line\nbreak` holds a control or invisible character (U+000A)",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

#[tokio::test]
async fn names_that_only_look_like_another_declared_name_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    vsphere_with_password(dir.path(), "https://vc.example.com", "{ env: P }");
    // A Cyrillic `е`, a trailing space, and `é` composed (NFC) against `e` + U+0301 (NFD).
    std::fs::write(
        dir.path().join("manifests/vms.yaml"),
        "kind: VirtualMachine\nname: \"w\\u0435b-01\"\nspec: {}\n---\nkind: VirtualMachine\nname: \"db-01 \"\nspec: {}\n---\nkind: VirtualMachine\nname: db-01\nspec: {}\n---\nkind: VirtualMachine\nname: \"caf\\u00e9\"\nspec: {}\n---\nkind: VirtualMachine\nname: \"cafe\\u0301\"\nspec: {}\n---\nkind: VirtualMachine\nname: app-01\nspec: {}\n",
    )
    .unwrap();
    let run = run_quickly(dir.path(), &["validate", "manifests"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for expected in [
        r"warning: manifests/vms.yaml:2:7: `name`: `w\u{435}b-01` looks like `web-01`, declared at manifests/estate.yaml:9:1",
        r"warning: manifests/vms.yaml:6:7: `name`: `db-01 ` looks like `db-01`, declared at manifests/vms.yaml:9:1",
        r"warning: manifests/vms.yaml:14:7: `name`: `caf\u{e9}` looks like `cafe\u{301}`, declared at manifests/vms.yaml:17:1",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("app-01"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_values_cannot_forge_the_plan_in_text_or_markdown() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "salt.yaml",
        "kind: SaltTarget\nname: \"**All checks passed** `x`\"\nspec:\n  desc: \"\\e[2J\\u202Egnp.exe ````` end\"\n  tgt: { \"*\": { tgt_type: glob, tgt: \"web-*\" } }\n",
    );
    let text = estate.run(&["plan", "manifests"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_no_forging_characters("the text plan", &text.stdout);
    assert!(
        text.stdout.contains(r#"\u{202e}gnp.exe"#),
        "{}",
        text.stdout
    );

    let markdown = estate
        .run(&["plan", "--format", "markdown", "manifests"])
        .await;
    assert_eq!(markdown.code, 0, "{}", markdown.stderr);
    let comment = markdown.stdout;
    assert_no_forging_characters("the markdown plan", &comment);
    // The name is one code span, not bold text followed by code.
    assert!(
        comment.contains("- `+` `` SaltTarget/**All checks passed** `x` ``\n"),
        "{comment}"
    );
    // The code block's fence is longer than any backtick run inside it.
    let (_, block) = comment
        .split_once("<summary>Show plan</summary>\n\n")
        .unwrap();
    let fence: String = block.chars().take_while(|c| *c == '`').collect();
    let body = &block[fence.len()..];
    let inner = body.split(&format!("\n{fence}\n")).next().unwrap();
    assert!(inner.contains("`````"), "{comment}");
    assert!(!inner.contains(&fence), "{comment}");
    assert!(
        body.contains(&format!("\n{fence}\n\n</details>")),
        "{comment}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_messages_are_printed_with_control_and_bidi_characters_visible() {
    let server = serve(axum::Router::new().fallback(|request: Request| async move {
        if request.uri().path() == "/rest/com/vmware/cis/session" {
            axum::Json(serde_json::json!({"value": "session"})).into_response()
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "boom\u{1b}[2J\r\u{202e}All checks passed\u{2066}",
            )
                .into_response()
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    vsphere_manifests(dir.path(), &server, "");
    let run = run_quickly(dir.path(), &["plan", "manifests"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_no_forging_characters("stderr", &run.stderr);
    assert!(
        run.stderr
            .contains(r"boom\u{1b}[2J \u{202e}All checks passed\u{2066}"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_an_apply_stops_cleanly_reports_the_running_task_and_exits_143() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let estate = Estate::start(480.0).await;
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: cancelled\nspec: { region: us-west-2, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal, account_link: { delay: true } }\n",
    );
    let mut child = estate
        .command(&["apply", "--auto-approve", "manifests"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let started = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.contains("Sddc/cancelled: Creating...") {
                return;
            }
        }
    })
    .await;
    assert!(started.is_ok(), "the create never started:\n{stdout}");
    // Let the create request reach the server (the SDDC task then runs for simulated hours).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut stderr = String::new();
    let mut err_pipe = child.stderr.take().unwrap();
    let (status, _, _) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        let _ = err_pipe.read_to_string(&mut stderr).await;
        stdout.push_str(&rest);
        (child.wait().await.unwrap(), (), ())
    })
    .await
    .expect("the apply did not stop after SIGTERM");
    assert_eq!(status.code(), Some(143), "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply interrupted."), "{stdout}");
    assert!(
        stdout.contains("still running on the server: 1")
            && stdout.contains("- Sddc/cancelled (task "),
        "{stdout}"
    );
    assert!(stderr.contains("will wait for them"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_virtual_machine_that_does_not_exist_is_a_plan_error_naming_it() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "vms.yaml",
        "kind: VirtualMachine\nname: ghost-01\nspec:\n  power_state: POWERED_ON\n",
    );
    let run = estate.run(&["plan", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("will be created"), "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "VirtualMachine/ghost-01: no VirtualMachine named `ghost-01` exists on connection `vcenter`, and sextant does not create VirtualMachine objects"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_simulator_on_the_same_state_file_is_refused() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("connections.yaml"),
        crate::support::connections("https://unused.example.com", "salt"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join(".sextant")).unwrap();
    // A simulator serving the state file `--sim` uses in this folder.
    let mut serving = crate::support::estate::command_in(
        dir.path(),
        &["sim", "serve", "--state", ".sextant/sim-state.json"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(serving.stdout.take().unwrap()).lines();
    let listening = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the simulator did not start");
    assert!(
        listening
            .unwrap()
            .unwrap_or_default()
            .starts_with("listening on"),
        "the simulator did not start"
    );

    let refused = run_quickly(dir.path(), &["plan", "--sim", "manifests"], &[]).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(
            "the simulator state file `.sextant/sim-state.json` is in use by another simulator (pid "
        ),
        "{}",
        refused.stderr
    );

    serving.kill().await.unwrap();
    let _ = serving.wait().await;
    let alone = run_quickly(dir.path(), &["plan", "--sim", "manifests"], &[]).await;
    assert_eq!(alone.code, 0, "{}\n{}", alone.stdout, alone.stderr);
}

// ---------------------------------------------------------------------------------------
// TLS: the simulator behind an HTTPS proxy presenting a certificate made for each case.

/// Accepts TLS connections for axum; failed handshakes are dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Forwards every request to the simulator at `upstream`.
async fn forward(State(upstream): State<String>, request: Request) -> Response {
    let client = reqwest::Client::new();
    let url = format!(
        "{upstream}{}",
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut forwarded = client.request(method, url);
    for (name, value) in request.headers() {
        if name != "host" {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    let reply = forwarded.body(body).send().await.unwrap();
    let status = reply.status().as_u16();
    let content_type = reply
        .headers()
        .get("content-type")
        .map(|v| v.as_bytes().to_vec());
    let mut response = Response::builder().status(status);
    if let Some(content_type) = content_type {
        response = response.header("content-type", content_type);
    }
    response
        .body(axum::body::Body::from(reply.bytes().await.unwrap()))
        .unwrap()
}

/// Serves the simulator at `upstream` over HTTPS with `chain` (server certificate first) and
/// its key; returns the HTTPS URL.
async fn serve_tls(
    upstream: &str,
    chain: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    key: &rcgen::KeyPair,
) -> String {
    use tokio_rustls::rustls;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", tcp.local_addr().unwrap());
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let router = axum::Router::new()
        .fallback(forward)
        .with_state(upstream.to_string());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Certificate parameters for `names`, marked as a CA or not.
fn params(names: &[&str], ca: bool) -> rcgen::CertificateParams {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params
}

/// `sextant plan` of a vSphere connection to `url` with `tls` settings (the CA file, when
/// given, is written as `ca.pem`).
async fn plan_over_tls(url: &str, ca_pem: Option<&str>, tls: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    vsphere_manifests(dir.path(), url, tls);
    if let Some(pem) = ca_pem {
        std::fs::write(dir.path().join("manifests/ca.pem"), pem).unwrap();
    }
    run_quickly(dir.path(), &["plan", "manifests"], &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_server_certificate_marked_as_ca_is_trusted_through_ca_file_or_a_pin() {
    let estate = Estate::start(240.0).await;
    // What `openssl req -x509` makes: self-signed, `CA:TRUE`.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params(&["127.0.0.1"], true).self_signed(&key).unwrap();
    let url = serve_tls(&estate.sim.base_url, vec![cert.der().clone()], &key).await;

    let trusted = plan_over_tls(&url, Some(&cert.pem()), "  tls:\n    ca_file: ca.pem\n").await;
    assert_eq!(trusted.code, 0, "{}\n{}", trusted.stdout, trusted.stderr);

    use sha2::Digest;
    let fingerprint: Vec<String> = sha2::Sha256::digest(cert.der().as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let pinned = plan_over_tls(
        &url,
        None,
        &format!("  tls:\n    pin_sha256: \"{}\"\n", fingerprint.join(":")),
    )
    .await;
    assert_eq!(pinned.code, 0, "{}\n{}", pinned.stdout, pinned.stderr);

    let wrong_pin = plan_over_tls(
        &url,
        None,
        &format!("  tls:\n    pin_sha256: \"{}\"\n", "00".repeat(32)),
    )
    .await;
    assert_eq!(wrong_pin.code, 1, "{}", wrong_pin.stderr);
    assert!(
        wrong_pin.stderr.contains("does not match `tls.pin_sha256`"),
        "{}",
        wrong_pin.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tls_failure_gets_the_hint_of_its_cause() {
    let estate = Estate::start(240.0).await;
    let upstream = estate.sim.base_url.clone();

    // Unknown issuer: a self-signed certificate nobody trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params(&["127.0.0.1"], false).self_signed(&key).unwrap();
    let url = serve_tls(&upstream, vec![cert.der().clone()], &key).await;
    let run = plan_over_tls(&url, None, "").await;
    assert!(
        run.stderr
            .contains("the certificate's issuer is not trusted"),
        "{}",
        run.stderr
    );

    // What `openssl req -x509` makes, not trusted yet.
    let cert = params(&["127.0.0.1"], true).self_signed(&key).unwrap();
    let url = serve_tls(&upstream, vec![cert.der().clone()], &key).await;
    let run = plan_over_tls(&url, None, "").await;
    assert!(
        run.stderr
            .contains("the server presents a CA certificate as its own"),
        "{}",
        run.stderr
    );

    // Expired, though trusted.
    let mut expired = params(&["127.0.0.1"], false);
    expired.not_before = rcgen::date_time_ymd(2000, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let cert = expired.self_signed(&key).unwrap();
    let url = serve_tls(&upstream, vec![cert.der().clone()], &key).await;
    let run = plan_over_tls(&url, Some(&cert.pem()), "  tls:\n    ca_file: ca.pem\n").await;
    assert!(
        run.stderr.contains("the server's certificate has expired"),
        "{}",
        run.stderr
    );

    // Trusted, but made for another name.
    let cert = params(&["vc.example.com"], false)
        .self_signed(&key)
        .unwrap();
    let url = serve_tls(&upstream, vec![cert.der().clone()], &key).await;
    let run = plan_over_tls(&url, Some(&cert.pem()), "  tls:\n    ca_file: ca.pem\n").await;
    assert!(
        run.stderr
            .contains("the server's certificate is not issued for the host in `url`"),
        "{}",
        run.stderr
    );

    // Issued by a trusted CA, but itself marked as a CA.
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root = rcgen::CertifiedIssuer::self_signed(params(&["root"], true), root_key).unwrap();
    let server = params(&["127.0.0.1"], true).signed_by(&key, &root).unwrap();
    let url = serve_tls(&upstream, vec![server.der().clone()], &key).await;
    let run = plan_over_tls(&url, Some(&root.pem()), "  tls:\n    ca_file: ca.pem\n").await;
    assert!(
        run.stderr
            .contains("the server presents a CA certificate as its own"),
        "{}",
        run.stderr
    );
}
