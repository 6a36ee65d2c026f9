//! `mcpwatch report --format html` (issue 24): the real binary's page,
//! opened in a real headless Chromium (Debian's `chromium-headless-shell`,
//! which `.ci/run` installs; the test fails, saying how to install it, when
//! it is missing), checked for a picture and for console errors; the page
//! names no URL outside itself; hostile log fields reach it escaped and
//! inert; the same input gives the same bytes (a golden file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support;

/// The Chromium binaries tried, smallest first.
const CHROMIUMS: [&str; 2] = ["chromium-headless-shell", "chromium"];
/// Long enough to show the header and the first charts.
const WINDOW: &str = "--window-size=1100,1600";

fn chromium() -> &'static str {
    for bin in CHROMIUMS {
        if Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return bin;
        }
    }
    panic!(
        "neither chromium-headless-shell nor chromium is installed: run \
         `apt-get install -y --no-install-recommends chromium-headless-shell` \
         (the CI script .ci/run does)"
    );
}

/// What one headless Chromium run left: the console messages it logged
/// (the page's `console.*` calls, uncaught exceptions, CSP violations),
/// the screenshot if asked for, and stdout (the DOM with `--dump-dom`).
struct Run {
    console: Vec<String>,
    png: Option<Vec<u8>>,
    stdout: String,
}

/// Opens `page` in headless Chromium with `args` (`--screenshot` is added
/// when `screenshot`), with a profile of its own, and waits (at most 90 s)
/// for it to exit.
fn open_in_chromium(page: &Path, screenshot: bool, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        WINDOW,
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.path().join("profile").display()
    ))
    .args(args);
    if screenshot {
        cmd.arg(format!("--screenshot={}", shot.display()));
    }
    let mut child = cmd
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = std::fs::read_to_string(&err).unwrap();
    Run {
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_string)
            .collect(),
        png: std::fs::read(&shot).ok(),
        stdout: std::fs::read_to_string(&out).unwrap(),
    }
}

/// Pixels of a PNG as RGB triples.
fn pixels(png_bytes: &[u8]) -> Vec<[u8; 3]> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf[..info.line_size * info.height as usize]
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0]; 3],
            _ => [p[0], p[1], p[2]],
        })
        .collect()
}

/// A copy of `fixtures/example` with the alerts its own scan raises in
/// `alerts.log`, so the report has alerts to show. Returns the temporary
/// directory (the example's root inside it).
fn example_with_alerts() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join(".elevenlabs/audit");
    std::fs::create_dir_all(&audit).unwrap();
    std::fs::copy(
        src.join("security-config.json"),
        d.path().join("security-config.json"),
    )
    .unwrap();
    for e in std::fs::read_dir(src.join(".elevenlabs/audit")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), audit.join(e.file_name())).unwrap();
    }
    let scan = mcpwatch_in(d.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(scan.status.success() || scan.status.code() == Some(3));
    assert!(scan.stdout.len() > 1000, "the example raises alerts");
    std::fs::write(audit.join("alerts.log"), &scan.stdout).unwrap();
    d
}

fn mcpwatch_in(cwd: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("mcpwatch"));
    c.current_dir(cwd).env_remove("RUST_LOG");
    c
}

/// The binary's HTML report of `dir` (relative to `cwd`) at `now`.
fn html_report(cwd: &Path, dir: &str, now: &str, args: &[&str]) -> String {
    let out = mcpwatch_in(cwd)
        .env("MCPWATCH_NOW", now)
        .args(["report", "--dir", dir, "--format", "html"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The example's report of 2026-11-23 (`--period daily`).
fn example_page() -> (tempfile::TempDir, PathBuf, String) {
    let d = example_with_alerts();
    let html = html_report(
        d.path(),
        ".elevenlabs/audit",
        "2026-11-24T09:00:00Z",
        &["--period", "daily"],
    );
    let page = d.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    (d, page, html)
}

/// The tags of `html` (`<…>`), the text of `<style>` and `<script>`
/// elements left out (a script's `x < y` is no tag).
fn tags(html: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else { break };
        let tag = &rest[i..i + j + 1];
        tags.push(tag);
        rest = &rest[i + j + 1..];
        for element in ["style", "script"] {
            if tag.to_ascii_lowercase().starts_with(&format!("<{element}")) {
                let close = format!("</{element}");
                let k = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
                rest = &rest[k..];
            }
        }
    }
    tags
}

/// The values of every `src`, `href`, `xlink:href`, `srcset`, `action`,
/// `poster` and `data` attribute of the tags of `html`, and every CSS
/// `url(…)` / `@import` anywhere in it.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for tag in tags(html) {
        let lower = tag.to_ascii_lowercase();
        for attr in [
            " src=", " href=", ":href=", " srcset=", " action=", " poster=", " data=",
        ] {
            for (i, _) in lower.match_indices(attr) {
                let rest = &tag[i + attr.len()..];
                let v = match rest.chars().next() {
                    Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
                    _ => rest.split([' ', '>']).next().unwrap_or(""),
                };
                urls.push(v.to_string());
            }
        }
    }
    let lower = html.to_ascii_lowercase();
    for marker in ["url(", "@import"] {
        for (i, _) in lower.match_indices(marker) {
            urls.push(html[i..].chars().take(60).collect());
        }
    }
    urls
}

fn assert_names_no_external_url(html: &str) {
    for u in referenced_urls(html) {
        assert!(
            u.starts_with('#'),
            "the page refers to something outside itself: {u:?}"
        );
    }
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<link"), "no <link> element");
    assert!(!lower.contains("<iframe") && !lower.contains("<object") && !lower.contains("<embed"));
    assert_eq!(lower.matches("<script").count(), 1, "one inline script");
    assert!(lower.contains("<script>"), "the script has no src");
}

#[test]
fn the_example_report_renders_in_headless_chromium_as_a_picture_with_no_console_error() {
    let (_d, page, html) = example_page();
    assert!(
        html.contains("<b>2</b>critical alerts"),
        "alert totals lead the page"
    );
    let run = open_in_chromium(&page, true, &[]);
    assert!(run.console.is_empty(), "console: {:#?}", run.console);
    let px = pixels(&run.png.expect("a screenshot"));
    assert_eq!(px.len(), 1100 * 1600);
    let background = px.iter().filter(|p| **p == [255, 255, 255]).count();
    let mut distinct = px.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() > 200,
        "{} colours: a blank page?",
        distinct.len()
    );
    assert!(
        background < px.len() * 95 / 100 && background > px.len() / 4,
        "{background} of {} pixels are background",
        px.len()
    );
    // The bars of the calls chart, in the success green (#2e7d32).
    let green = px.iter().filter(|p| **p == [0x2e, 0x7d, 0x32]).count();
    assert!(green > 5_000, "{green} pixels of success bars");
}

#[test]
fn the_console_check_catches_an_error_planted_in_the_page() {
    // The check above must be able to fail: the same page with a script
    // that throws (which the page's CSP also refuses: two messages).
    let (d, _page, html) = example_page();
    let planted = d.path().join("planted.html");
    std::fs::write(
        &planted,
        html.replace("</body>", "<script>undefinedFunction();</script></body>"),
    )
    .unwrap();
    let run = open_in_chromium(&planted, false, &["--dump-dom"]);
    assert!(
        run.console
            .iter()
            .any(|l| l.contains("Content Security Policy") || l.contains("Uncaught")),
        "console: {:#?}",
        run.console
    );
}

#[test]
fn the_page_names_no_url_outside_itself() {
    let (_d, _page, html) = example_page();
    assert_names_no_external_url(&html);
    // The check finds what it looks for, in tags only.
    assert_eq!(
        referenced_urls("<img src=\"https://x/y.png\"><a href='#a'>&lt;img src=x&gt;"),
        ["https://x/y.png", "#a"]
    );
    assert!(
        std::panic::catch_unwind(|| assert_names_no_external_url(
            &html.replace("<style>", "<style>@import url(https://x/a.css);")
        ))
        .is_err()
    );
}

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[test]
fn a_click_on_a_column_header_sorts_the_table_and_a_second_reverses_it() {
    let (d, _page, html) = example_page();
    // A probe script, allowed by adding its hash to the page's CSP, clicks
    // the Servers table's CALLS header twice and logs the order.
    let probe = "var t = document.querySelector('#servers table');\
        var th = t.tHead.rows[0].cells[2];\
        function order() { return Array.prototype.map.call(t.tBodies[0].rows, \
          function (r) { return r.cells[0].textContent + '=' + r.cells[2].textContent; }).join(' '); }\
        console.log('before ' + order());\
        th.click(); console.log('up ' + order() + ' ' + th.getAttribute('aria-sort'));\
        th.click(); console.log('down ' + order() + ' ' + th.getAttribute('aria-sort'));\
        var tools = document.querySelector('#tools table');\
        tools.tHead.rows[0].cells[9].click();\
        console.log('pct ' + Array.prototype.map.call(tools.tBodies[0].rows, \
          function (r) { return r.cells[9].textContent; }).join(' '));";
    let probed = html
        .replace("script-src ", &format!("script-src {} ", csp_hash(probe)))
        .replace("</body>", &format!("<script>{probe}</script></body>"));
    let page = d.path().join("probed.html");
    std::fs::write(&page, probed).unwrap();
    let run = open_in_chromium(&page, false, &["--dump-dom"]);
    let line = |tag: &str| -> Vec<(String, u64)> {
        let l = run
            .console
            .iter()
            .find(|l| l.contains(&format!("\"{tag} ")))
            .unwrap_or_else(|| panic!("no {tag} line: {:#?}", run.console));
        let body = l.split('"').nth(1).unwrap();
        body.split(' ')
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    };
    let before = line("before");
    let names: Vec<&str> = before.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "by server name without the script's help");
    let up = line("up");
    let down = line("down");
    assert_eq!(up.len(), before.len());
    assert!(up.windows(2).all(|w| w[0].1 <= w[1].1), "{up:?}");
    assert!(down.windows(2).all(|w| w[0].1 >= w[1].1), "{down:?}");
    assert!(up.first().unwrap().1 < up.last().unwrap().1);
    // DENY % sorts by the rate in data-v: the tools without decisions ("-")
    // first, then the rates upwards.
    let pct = run
        .console
        .iter()
        .find(|l| l.contains("\"pct "))
        .unwrap_or_else(|| panic!("no pct line: {:#?}", run.console));
    let cells: Vec<&str> = pct.split('"').nth(1).unwrap().split(' ').skip(1).collect();
    let dashes = cells.iter().take_while(|c| **c == "-").count();
    assert!(dashes > 0 && dashes < cells.len(), "{cells:?}");
    let rates: Vec<f64> = cells[dashes..]
        .iter()
        .map(|c| c.trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] <= w[1]), "{cells:?}");
    assert!(run.console.iter().any(|l| l.contains("ascending")));
    assert!(run.console.iter().any(|l| l.contains("descending")));
}

/// A log directory whose every field an attacker may write is hostile.
fn hostile_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    std::fs::write(
        d.path().join("security-config.json"),
        r#"{"approvalMode":"fine_grained","rules":{"disabled":{"patterns":["admin_*"],"tools":[]}}}"#,
    )
    .unwrap();
    let tools = [
        "<script>alert(1)</script>",
        "admin_\"><img src=x onerror=alert(2)>",
        "t\u{1b}]0;pwned\u{7}\r\nfake",
        "invoice\u{202e}fdp.exe",
        "\u{2066}iso\u{2069}'quote'&amp;",
    ];
    let mut calls = String::new();
    let mut errors = String::new();
    for (i, tool) in tools.iter().enumerate() {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let user = format!("u<b>{i}</b>\u{202d}");
        for k in 0..3 {
            calls.push_str(&format!(
                "{{\"ts\":\"2026-11-20T1{i}:0{k}:00Z\",\"request_id\":{},\"user_id\":{},\"server_name\":{},\"tool_name\":{},\"outcome\":\"success\",\"duration_ms\":{}}}\n",
                q(&format!("r-{i}-{k}\"><svg onload=alert(3)>")),
                q(&user),
                q(&format!("srv</title><script>alert(4)</script>{i}")),
                q(tool),
                10 * (k + 1)
            ));
        }
        errors.push_str(&format!(
            "{{\"ts\":\"2026-11-20T1{i}:30:00Z\",\"server_name\":\"s\",\"tool_name\":{},\"error_type\":\"<iframe src=//x>\"}}\n",
            q(tool)
        ));
    }
    std::fs::write(audit.join("tool-usage.log"), calls).unwrap();
    std::fs::write(audit.join("errors.log"), errors).unwrap();
    d
}

#[test]
fn hostile_log_fields_appear_escaped_and_stay_inert() {
    let d = hostile_dir();
    let html = html_report(
        d.path(),
        "audit",
        "2026-11-21T12:00:00Z",
        &["--period", "daily"],
    );
    // Shown as text, visibly.
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "admin_&quot;&gt;&lt;img src=x onerror=alert(2)&gt;",
        "t\\u{1b}]0;pwned\\u{7}\\r\\nfake",
        "invoice\\u{202e}fdp.exe",
        "\\u{2066}iso\\u{2069}&#39;quote&#39;&amp;amp;",
        "u&lt;b&gt;0&lt;/b&gt;\\u{202d}",
        "&lt;iframe src=//x&gt;",
    ] {
        assert!(html.contains(shown), "{shown} is not shown");
    }
    // Never raw.
    for raw in ["<script>alert", "<img", "<svg onload", "<iframe", "u<b>"] {
        assert!(!html.contains(raw), "{raw} reached the page raw");
    }
    for c in html.chars() {
        assert!(
            c == '\n' || !mcpwatch_needs_escape(c),
            "raw U+{:04X} in the page",
            c as u32
        );
    }
    assert_names_no_external_url(&html);
    // In a browser: nothing was made of them, nothing ran, nothing failed.
    let page = d.path().join("hostile.html");
    std::fs::write(&page, &html).unwrap();
    let run = open_in_chromium(&page, false, &["--dump-dom"]);
    assert!(run.console.is_empty(), "console: {:#?}", run.console);
    let dom = run.stdout.to_ascii_lowercase();
    assert!(dom.contains("<table"), "the DOM was dumped");
    assert_eq!(dom.matches("<script").count(), 1, "only the page's script");
    for tag in ["<img", "<iframe", "u<b>"] {
        assert!(!dom.contains(tag), "{tag} became an element");
    }
    // The disabled tool is listed, escaped, in its table.
    assert!(html.contains("Disabled-tool calls: 3"));
}

/// The characters SPEC §8 says never reach a reader raw.
fn mcpwatch_needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[test]
fn the_html_of_a_fixed_input_and_now_is_the_same_bytes_every_run() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report/basic");
    let expected_path = fixture.join("expected-weekly.html");
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    std::fs::copy(
        fixture.join("security-config.json"),
        d.path().join("security-config.json"),
    )
    .unwrap();
    for e in std::fs::read_dir(fixture.join("audit")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), audit.join(e.file_name())).unwrap();
    }
    let args = ["--period", "weekly"];
    let now = "2026-11-23T12:00:00Z";
    let first = html_report(d.path(), "audit", now, &args);
    let second = html_report(d.path(), "audit", now, &args);
    assert!(first == second, "two runs differ");
    if support::blessing() {
        std::fs::write(&expected_path, &first).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run MCPWATCH_BLESS=1 cargo test --test it report_html::",
            expected_path.display()
        )
    });
    if first != expected {
        let line = first
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "the page differs from {} from line {} on; if intended, \
             MCPWATCH_BLESS=1 cargo test --test it report_html:: and review the diff",
            expected_path.display(),
            line + 1
        );
    }
    // The week's days without logs (16th to 19th) are shaded on the axis.
    assert!(first.contains("no log line from 2026-11-16 to 2026-11-19"));
}

#[test]
fn the_page_takes_the_dark_theme_when_the_browser_asks_for_one() {
    let (_d, page, _html) = example_page();
    let light = open_in_chromium(&page, true, &[]);
    let dark = open_in_chromium(&page, true, &["--blink-settings=preferredColorScheme=0"]);
    assert!(dark.console.is_empty(), "console: {:#?}", dark.console);
    // The page's background, at its top left corner.
    assert_eq!(pixels(&light.png.unwrap())[0], [0xff, 0xff, 0xff]);
    let dark = pixels(&dark.png.unwrap());
    assert_eq!(dark[0], [0x0d, 0x11, 0x17]);
    // Still a picture: the success bars in the dark theme's green (#57ab5a).
    assert!(dark.iter().filter(|p| **p == [0x57, 0xab, 0x5a]).count() > 5_000);
}

#[test]
fn the_page_prints_to_pdf_on_several_pages_with_no_console_error() {
    let (d, page, _html) = example_page();
    let pdf = d.path().join("report.pdf");
    let run = open_in_chromium(
        &page,
        false,
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
    );
    assert!(run.console.is_empty(), "console: {:#?}", run.console);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    let pages: u32 = text
        .split("/Count ")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(pages >= 2, "{pages} pages");
}

#[test]
fn a_table_past_a_thousand_rows_lists_the_busiest_thousand_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    // 1,200 users; u-0000 … u-0199 call twice, the others once.
    let mut calls = String::new();
    for u in 0..1200 {
        for k in 0..(if u < 200 { 2 } else { 1 }) {
            calls.push_str(&format!(
                "{{\"ts\":\"2026-11-20T10:{:02}:{:02}Z\",\"user_id\":\"u-{u:04}\",\"server_name\":\"s\",\"tool_name\":\"t\",\"outcome\":\"success\"}}\n",
                u % 60,
                k
            ));
        }
    }
    std::fs::write(audit.join("tool-usage.log"), calls).unwrap();
    let html = html_report(
        d.path(),
        "audit",
        "2026-11-21T12:00:00Z",
        &["--period", "daily"],
    );
    let users = &html[html.find("<section id=\"users\">").unwrap()..];
    let users = &users[..users.find("</section>").unwrap()];
    assert!(
        users.contains("Showing the 1000 users with the most calls of 1200;"),
        "{}",
        &users[..400]
    );
    assert_eq!(users.matches("<tr>").count(), 1 + 1000, "header and rows");
    // Every busier user is kept, and the rest in the model's order.
    assert!(users.contains("<td>u-0199</td>") && users.contains("<td>u-0999</td>"));
    assert!(!users.contains("<td>u-1000</td>"));
    assert!(users.find("u-0000").unwrap() < users.find("u-0500").unwrap());
    // The totals still count everyone.
    assert!(html.contains("1400 tool calls") && html.contains("1200 users"));
}
