//! The browser side of the admin UI tests: a headless Chromium driven over WebDriver (chromedriver
//! and the fantoccini client) against a real `vexil serve`, with small helpers that wait for what a
//! person would wait for and explain themselves when they fail.
//!
//! Chromium and chromedriver are named by `VEXIL_CHROMIUM` and `VEXIL_CHROMEDRIVER`, else found on
//! `PATH` or in `/usr/bin`. Without them the tests are skipped, unless `VEXIL_REQUIRE_BROWSER=1`,
//! which makes a missing browser a failure (CI sets it).
//!
//! Nothing here sleeps to synchronise: every wait polls for its condition and returns as soon as
//! it holds, up to [`WAIT`]. A failed wait or check saves a screenshot named after the test and
//! its current step, and panics with the page's address, its visible error texts, the start of its
//! text and the browser console. Screenshots (of the main screens too) go to
//! `<target dir>/ui-screenshots/`.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::server_process::{ADMIN_KEY, Api, Server};

/// How long a wait for the page (an element, a text, an effect on the server) may take. Generous,
/// because the tests share small machines with other builds; a wait that succeeds returns as soon
/// as its condition holds.
pub const WAIT: Duration = Duration::from_secs(20);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// How long chromedriver may take to say that it listens.
const DRIVER_START: Duration = Duration::from_secs(30);

/// Chromium's command line besides its profile: headless, without the sandbox (CI containers run
/// as root), and with nothing that reaches out to the network on its own, so that the only
/// requests are the page's.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// What the page shows as errors, for failure messages: every visible element matching this.
const ERROR_SELECTOR: &str = "[data-test=signin-error], [data-test=field-error], \
    [data-test=form-errors], [data-test=conflict], [data-test=toast], [role=alert]";

/// Browser tests run one at a time. Each has its own server, Chromium and profile; two Chromiums
/// on a small CI machine slow each other down more than running side by side gains.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Clears the failure screenshots of earlier runs, once per run, so that those in the directory
/// are this run's.
static FORGET_OLD_FAILURES: Once = Once::new();

/// What the environment says about the browser.
struct Environment {
    /// `VEXIL_CHROMEDRIVER`.
    chromedriver: Option<OsString>,
    /// `VEXIL_CHROMIUM`.
    chromium: Option<OsString>,
    /// `VEXIL_REQUIRE_BROWSER=1`: skipping is a failure.
    required: bool,
    /// `CARGO_TARGET_DIR`, where the screenshots go when it is an absolute path.
    target_dir: Option<OsString>,
    /// `PATH`, searched for the programs not named explicitly.
    path: Option<OsString>,
}

/// Reads the variables of [`Environment`].
// The workspace bans reading the environment so that the binaries take their configuration
// through clap, in one place. A test has no command line of its own: these variables are how CI
// and developers point the browser tests at a browser, and this is the one place they are read.
#[allow(clippy::disallowed_methods)]
fn environment() -> Environment {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    Environment {
        chromedriver: set("VEXIL_CHROMEDRIVER"),
        chromium: set("VEXIL_CHROMIUM"),
        required: std::env::var("VEXIL_REQUIRE_BROWSER").is_ok_and(|v| v.trim() == "1"),
        target_dir: set("CARGO_TARGET_DIR"),
        path: set("PATH"),
    }
}

/// The two programs the tests need.
struct Browser {
    chromedriver: PathBuf,
    chromium: PathBuf,
}

impl Environment {
    /// Finds chromedriver and Chromium, or says why not.
    fn browser(&self) -> Result<Browser, String> {
        Ok(Browser {
            chromedriver: self.program(
                "VEXIL_CHROMEDRIVER",
                self.chromedriver.as_ref(),
                &["chromedriver"],
                "/usr/bin/chromedriver",
            )?,
            chromium: self.program(
                "VEXIL_CHROMIUM",
                self.chromium.as_ref(),
                &["chromium", "chromium-browser"],
                "/usr/bin/chromium",
            )?,
        })
    }

    /// The program the variable `variable` names (which must then exist), else the first of
    /// `names` on `PATH`, else `fallback`.
    fn program(
        &self,
        variable: &str,
        named: Option<&OsString>,
        names: &[&str],
        fallback: &str,
    ) -> Result<PathBuf, String> {
        if let Some(path) = named {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "{variable} is {}, which is not a file",
                    path.display()
                ))
            };
        }
        let on_path = self.path.iter().flat_map(std::env::split_paths);
        let found = on_path
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .chain(std::iter::once(PathBuf::from(fallback)))
            .find(|candidate| candidate.is_file());
        found.ok_or_else(|| {
            format!(
                "{} is not installed (not on PATH, not {fallback}; set {variable} to it)",
                names[0]
            )
        })
    }

    /// `<target dir>/ui-screenshots`: `CARGO_TARGET_DIR` when it is absolute, else the target
    /// directory this test binary was built in (the `vexil` binary sits in `<target>/<profile>/`).
    fn screenshot_dir(&self) -> PathBuf {
        let explicit = self
            .target_dir
            .as_ref()
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute());
        let target = explicit.unwrap_or_else(|| {
            let binary = Path::new(env!("CARGO_BIN_EXE_vexil"));
            binary
                .parent()
                .and_then(Path::parent)
                .expect("the vexil binary is in <target>/<profile>/")
                .to_path_buf()
        });
        target.join("ui-screenshots")
    }
}

/// A chromedriver process, in a process group of its own so that it and the Chromium it starts
/// are killed together when this is dropped, however the test ends.
struct Driver {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// What chromedriver wrote so far, for failure messages.
    log: Arc<Mutex<String>>,
}

impl Driver {
    /// Starts `chromedriver --port=0` and waits until it says which port it took.
    fn start(program: &Path) -> Driver {
        let mut command = Command::new(program);
        command
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));

        let log = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let pipe = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            // "ChromeDriver was started successfully on port 40211."
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let port = line
                    .strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = tx.send(port);
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });

        let mut driver = Driver {
            child,
            url: String::new(),
            log,
        };
        match rx.recv_timeout(DRIVER_START) {
            Ok(port) => driver.url = format!("http://127.0.0.1:{port}"),
            Err(_) => panic!(
                "{} did not report its port within {DRIVER_START:?}; its output:\n{}",
                program.display(),
                driver.log()
            ),
        }
        driver
    }

    /// What chromedriver wrote so far.
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A WebDriver session in a new headless Chromium with the profile `profile`.
    async fn session(&self, chromium: &Path, profile: &Path) -> Client {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
            // No WebDriver command may hang a test: page loads and scripts get a bound too.
            "timeouts": { "pageLoad": 60_000, "script": 30_000, "implicit": 0 },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("the capabilities are an object")
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} through chromedriver: {e}; chromedriver's output:\n{}",
                    chromium.display(),
                    self.log()
                )
            })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium processes it started.
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        // Fails only when the process has already exited, which is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-out browser on the admin UI of a fresh `vexil serve`. Dropping it kills the browser
/// and the server; when that happens because the test panicked, the page is saved first.
pub struct Ui {
    client: Client,
    /// The WebDriver session's id, for the screenshot taken from `Drop`.
    session: String,
    /// The test's name, in the names of its failure screenshots.
    test: &'static str,
    /// What the test is doing now, set by [`Ui::step`].
    step: Mutex<String>,
    /// Whether a failure screenshot was already taken (by a failed wait or check).
    failure_saved: AtomicBool,
    shots: PathBuf,
    server: Server,
    // Dropped in this order: the browser before its profile is removed.
    driver: Driver,
    _profile: tempfile::TempDir,
    _data: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Ui {
    /// Starts a server and a browser for the test `test`, the browser showing the sign-in page;
    /// `None` (after saying why) when there is no browser and `VEXIL_REQUIRE_BROWSER` is not `1`.
    pub async fn start(test: &'static str) -> Option<Ui> {
        let env = environment();
        let browser = match env.browser() {
            Ok(browser) => browser,
            Err(why) => {
                assert!(
                    !env.required,
                    "VEXIL_REQUIRE_BROWSER=1 but {why}: install Chromium and chromedriver \
                     (`apt-get install chromium chromium-driver`; .ci/run does it)"
                );
                println!(
                    "skipping the browser test {test}: {why} (set VEXIL_REQUIRE_BROWSER=1 to make \
                     skipping an error)"
                );
                return None;
            }
        };
        let turn = ONE_BROWSER_AT_A_TIME.lock().await;
        let shots = env.screenshot_dir();
        FORGET_OLD_FAILURES.call_once(|| forget_failures(&shots));
        let data = tempfile::tempdir().expect("a data directory");
        let server = Server::start(data.path());
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let driver = Driver::start(&browser.chromedriver);
        let client = driver.session(&browser.chromium, profile.path()).await;
        let session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session has an id");
        let ui = Ui {
            client,
            session,
            test,
            step: Mutex::new("start".to_owned()),
            failure_saved: AtomicBool::new(false),
            shots,
            server,
            driver,
            _profile: profile,
            _data: data,
            _turn: turn,
        };
        ui.open("").await;
        ui.wait_for("[data-test=signin-key]").await;
        Some(ui)
    }

    /// An admin API client of the server (bearer auth with the admin key).
    pub fn api(&self) -> Api {
        self.server.admin()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Names what the test does next, for its failure messages and screenshots.
    pub fn step(&self, what: &str) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = what.to_owned();
    }

    fn current_step(&self) -> String {
        self.step.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opens the UI at the hash route `route` (`"#/flags"`; `""` for `/`).
    pub async fn open(&self, route: &str) {
        let url = format!("{}/{route}", self.base_url());
        if let Err(e) = self.client.goto(&url).await {
            self.fail(format!("opening {url}: {e}")).await;
        }
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        if let Err(e) = self.client.refresh().await {
            self.fail(format!("reloading the page: {e}")).await;
        }
    }

    /// Waits until an element matching `css` is displayed, and returns the first such.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.poll(&format!("`{css}` to be shown"), async || {
            self.displayed(css).await
        })
        .await
    }

    /// Waits until no element matching `css` is displayed.
    pub async fn wait_gone(&self, css: &str) {
        self.poll(&format!("`{css}` to go away"), async || {
            Ok(self.displayed(css).await?.is_none().then_some(()))
        })
        .await;
    }

    /// Waits until a displayed element matching `css` has a text containing `needle` (ignoring
    /// case), and returns that text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let lower = needle.to_lowercase();
        self.poll(
            &format!("`{css}` to show a text containing {needle:?}"),
            async || {
                for element in self.client.find_all(Locator::Css(css)).await? {
                    if element.is_displayed().await? {
                        let text = element.text().await?;
                        if text.to_lowercase().contains(&lower) {
                            return Ok(Some(text));
                        }
                    }
                }
                Ok(None)
            },
        )
        .await
    }

    /// Waits until an element matching `css` has a text containing `needle`, whether it is
    /// displayed or not (like the signed-in name inside a collapsed menu).
    pub async fn wait_text_in_page(&self, css: &str, needle: &str) {
        let script = "return [...document.querySelectorAll(arguments[0])]
            .some((el) => el.textContent.includes(arguments[1]));";
        self.poll(
            &format!("`{css}` to hold a text containing {needle:?}"),
            async || {
                let found = self
                    .client
                    .execute(script, vec![json!(css), json!(needle)])
                    .await?;
                Ok((found == json!(true)).then_some(()))
            },
        )
        .await;
    }

    /// Waits until the first element matching `css` has the attribute `name` equal to `value`.
    pub async fn wait_attr(&self, css: &str, name: &str, value: &str) {
        self.poll(&format!("`{css}` to have {name}={value:?}"), async || {
            let Some(element) = self.displayed(css).await? else {
                return Ok(None);
            };
            Ok((element.attr(name).await?.as_deref() == Some(value)).then_some(()))
        })
        .await;
    }

    /// Waits until the first displayed input matching `css` has the value `value`.
    pub async fn wait_value(&self, css: &str, value: &str) {
        self.poll(
            &format!("`{css}` to have the value {value:?}"),
            async || {
                let Some(element) = self.displayed(css).await? else {
                    return Ok(None);
                };
                Ok((element.prop("value").await?.as_deref() == Some(value)).then_some(()))
            },
        )
        .await;
    }

    /// Waits until the page's address ends with `suffix` (a hash route like `#/flags/k`).
    pub async fn wait_route(&self, suffix: &str) {
        self.poll(&format!("the address to end with {suffix:?}"), async || {
            let url = self.client.current_url().await?;
            Ok(url.as_str().ends_with(suffix).then_some(()))
        })
        .await;
    }

    /// Clicks the element matching `css` once it is displayed and enabled (retrying while
    /// something, like a closing dialog, is in the way).
    pub async fn click(&self, css: &str) {
        self.poll(&format!("to click `{css}`"), async || {
            let Some(element) = self.displayed(css).await? else {
                return Ok(None);
            };
            if !element.is_enabled().await? {
                return Ok(None);
            }
            match element.click().await {
                Ok(()) => Ok(Some(())),
                Err(CmdError::Standard(e)) if e.error() == "element click intercepted" => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
    }

    /// Replaces the text of the input or textarea matching `css` with `text`, by typing, as a
    /// person does (select all, delete, type).
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        // Control+A selects the field's text, Null releases Control, Backspace deletes it.
        let keys = format!("{}a{}{}{text}", Key::Control, Key::Null, Key::Backspace);
        if let Err(e) = element.send_keys(&keys).await {
            self.fail(format!("typing into `{css}`: {e}")).await;
        }
        let value = element
            .prop("value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if value != text {
            self.fail(format!(
                "typed {text:?} into `{css}`, but its value is {value:?}"
            ))
            .await;
        }
    }

    /// Chooses the option with the value `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let element = self.wait_for(css).await;
        self.poll(
            &format!("`{css}` to offer the option {value:?}"),
            async || {
                let options = element
                    .find_all(Locator::Css(&format!("option[value=\"{value}\"]")))
                    .await?;
                Ok((!options.is_empty()).then_some(()))
            },
        )
        .await;
        if let Err(e) = element.select_by_value(value).await {
            self.fail(format!("choosing {value:?} in `{css}`: {e}"))
                .await;
        }
    }

    /// The text of the first displayed element matching `css` (waiting for it).
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(e) => self.fail(format!("reading the text of `{css}`: {e}")).await,
        }
    }

    /// The `value` of the first displayed input or select matching `css` (waiting for it).
    pub async fn value_of(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        match element.prop("value").await {
            Ok(value) => value.unwrap_or_default(),
            Err(e) => {
                self.fail(format!("reading the value of `{css}`: {e}"))
                    .await
            }
        }
    }

    /// Runs `script` in the page (its `return` value comes back).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute(script, args).await {
            Ok(value) => value,
            Err(e) => {
                self.fail(format!("running a script in the page: {e}"))
                    .await
            }
        }
    }

    /// Runs the asynchronous `script` in the page: it calls `arguments[arguments.length - 1]`
    /// with its result.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute_async(script, args).await {
            Ok(value) => value,
            Err(e) => {
                self.fail(format!("running a script in the page: {e}"))
                    .await
            }
        }
    }

    /// The texts of the displayed elements matching `css` (none is fine: this does not wait).
    pub async fn lines(&self, css: &str) -> Vec<String> {
        let script = "return [...document.querySelectorAll(arguments[0])]
            .filter((el) => el.getClientRects().length)
            .map((el) => el.innerText.trim());";
        let texts = self.js(script, vec![json!(css)]).await;
        texts
            .as_array()
            .map(|texts| {
                texts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Types `keys` on the keyboard, into whatever has the focus (`&Key::Tab` for a special key).
    pub async fn press(&self, keys: &str) {
        let mut typing = KeyActions::new("keyboard".to_owned());
        for key in keys.chars() {
            typing = typing
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        if let Err(e) = self.client.perform_actions(typing).await {
            self.fail(format!("pressing keys: {e}")).await;
        }
    }

    /// The `data-test` hook of the element that has the focus, if it has one.
    pub async fn focused(&self) -> Option<String> {
        let hook = self
            .js(
                "const el = document.activeElement;
                 return el ? el.getAttribute('data-test') : null;",
                vec![],
            )
            .await;
        hook.as_str().map(str::to_owned)
    }

    /// Resizes the browser window (the page's viewport follows; headless Chromium has no
    /// window decorations).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        if let Err(e) = self.client.set_window_size(width, height).await {
            self.fail(format!("resizing the window to {width}x{height}: {e}"))
                .await;
        }
        let inner = self.js("return window.innerWidth;", vec![]).await;
        self.ensure(
            inner.as_u64().is_some_and(|w| w <= u64::from(width)),
            format!("the window was resized to {width} px wide, but the page is {inner} px wide"),
        )
        .await;
    }

    /// Checks that the page is not wider than the window (which would scroll it sideways).
    pub async fn check_no_sideways_scroll(&self) {
        let widths = self
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let (scroll, inner) = (widths[0].as_u64(), widths[1].as_u64());
        let wider = match (scroll, inner) {
            (Some(scroll), Some(inner)) => scroll > inner + 1,
            _ => true,
        };
        if wider {
            // Name the widest offenders, to say what to fix.
            let offenders = self
                .js(
                    "return [...document.querySelectorAll('body *')]
                        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
                        .slice(0, 8)
                        .map((el) => `${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ').join('.') : ''}${el.dataset.test ? '[data-test=' + el.dataset.test + ']' : ''} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`);",
                    vec![],
                )
                .await;
            self.fail(format!(
                "the page is {} px wide in a {} px window, so it scrolls sideways; wider elements: {offenders}",
                widths[0], widths[1]
            ))
            .await;
        }
    }

    /// Scrolls the first displayed element matching `css` to the middle of the window, then saves
    /// the page as `<screenshot dir>/NAME.png`.
    pub async fn screenshot_at(&self, name: &str, css: &str) -> PathBuf {
        let element = self.wait_for(css).await;
        let script = "arguments[0].scrollIntoView({ block: 'center' });";
        let element = serde_json::to_value(&element).expect("an element serialises");
        self.js(script, vec![element]).await;
        self.screenshot(name).await
    }

    /// Saves the page as `<screenshot dir>/NAME.png` and says where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        let saved = match self.client.screenshot().await {
            Ok(png) => save(&path, &png),
            Err(e) => Err(e.to_string()),
        };
        match saved {
            Ok(()) => println!("screenshot: {}", path.display()),
            Err(e) => {
                self.fail(format!("saving the screenshot {name}: {e}"))
                    .await
            }
        }
        path
    }

    /// Signs in with the admin key as `person`, waits for the flag list.
    pub async fn sign_in(&self, person: &str) {
        self.step("sign in");
        self.fill("[data-test=signin-key]", ADMIN_KEY).await;
        self.fill("[data-test=signin-name]", person).await;
        self.click("[data-test=signin-submit]").await;
        self.wait_for("[data-test=new-flag]").await;
        // Shown or not: on a phone the name is in the collapsed menu.
        self.wait_text_in_page("[data-test=whoami]", person).await;
    }

    /// Checks `condition`; when it does not hold, fails with `message` and the page's state.
    pub async fn ensure(&self, condition: bool, message: impl Display) {
        if !condition {
            self.fail(message.to_string()).await;
        }
    }

    /// Waits until `probe` returns `Ok` (it says what it saw with `Err`): for effects of the
    /// page's actions on the server, which arrive a moment after the click.
    pub async fn eventually(&self, what: &str, mut probe: impl AsyncFnMut() -> Result<(), String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            match probe().await {
                Ok(()) => return,
                Err(seen) if Instant::now() >= deadline => {
                    self.fail(format!("waited {WAIT:?} for {what}; last seen: {seen}"))
                        .await;
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Fails the test: saves a screenshot named after the test and its step, and panics with
    /// `message` and what the page shows.
    pub async fn fail(&self, message: String) -> ! {
        let step = self.current_step();
        let name = format!("FAILED-{}-{}", self.test, slug(&step));
        let path = self.shots.join(format!("{name}.png"));
        let shot = match self.client.screenshot().await {
            Ok(png) => save(&path, &png).map(|()| path.display().to_string()),
            Err(e) => Err(e.to_string()),
        };
        self.failure_saved.store(true, Ordering::SeqCst);
        let page = self.page_report().await;
        panic!(
            "{test}, step \"{step}\": {message}\n{page}\nscreenshot: {shot}",
            test = self.test,
            shot = shot.unwrap_or_else(|e| format!("not saved: {e}")),
        );
    }

    /// The page's address, its visible error texts, the start of its text and the browser
    /// console, for a failure message.
    async fn page_report(&self) -> String {
        let script = r#"
            const errors = [];
            for (const el of document.querySelectorAll(arguments[0])) {
                const text = el.innerText.trim();
                if (el.getClientRects().length && text) {
                    errors.push(`${el.getAttribute('data-test') || el.getAttribute('role')}: ${text}`);
                }
            }
            const body = document.body ? document.body.innerText.trim() : '';
            return { url: location.href, errors, body: body.slice(0, 1500) };
        "#;
        let mut report = match self
            .client
            .execute(script, vec![json!(ERROR_SELECTOR)])
            .await
        {
            Ok(page) => {
                let errors = page["errors"].as_array().map_or_else(Vec::new, |errors| {
                    errors
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                });
                format!(
                    "page: {}\nvisible errors: {}\npage text:\n  {}",
                    page["url"].as_str().unwrap_or("?"),
                    if errors.is_empty() {
                        "none".to_owned()
                    } else {
                        errors.join(" | ")
                    },
                    page["body"].as_str().unwrap_or("").replace('\n', "\n  "),
                )
            }
            Err(e) => format!("the page could not be read: {e}"),
        };
        let console = self.console().await;
        report.push_str("\nbrowser console: ");
        report.push_str(if console.is_empty() {
            "nothing"
        } else {
            &console
        });
        report
    }

    /// The browser console's messages since the last call (chromedriver's log endpoint).
    async fn console(&self) -> String {
        let url = format!("{}/session/{}/se/log", self.driver.url, self.session);
        let reply = reqwest::Client::new()
            .post(&url)
            .json(&json!({"type": "browser"}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(reply) = reply else {
            return "(not available)".to_owned();
        };
        let Ok(body) = reply.json::<Value>().await else {
            return "(not available)".to_owned();
        };
        let entries = body["value"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .map(|entry| {
                format!(
                    "\n  {} {}",
                    entry["level"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Polls `probe` until it returns `Some`, for up to [`WAIT`]. WebDriver errors (an element
    /// gone stale between finding and reading it) count as "not yet"; a lost connection to the
    /// browser fails at once.
    async fn poll<T>(
        &self,
        what: &str,
        mut probe: impl AsyncFnMut() -> Result<Option<T>, CmdError>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        let mut last_error = None;
        loop {
            match probe().await {
                Ok(Some(found)) => return found,
                Ok(None) => {}
                Err(CmdError::Standard(e)) => last_error = Some(e.to_string()),
                Err(e) => self.fail(format!("waiting for {what}: {e}")).await,
            }
            if Instant::now() >= deadline {
                let last = last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                self.fail(format!("waited {WAIT:?} for {what}{last}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first displayed element matching `css`, if any.
    async fn displayed(&self, css: &str) -> Result<Option<Element>, CmdError> {
        for element in self.client.find_all(Locator::Css(css)).await? {
            if element.is_displayed().await? {
                return Ok(Some(element));
            }
        }
        Ok(None)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        // A panic the helpers did not see (an assertion in the test): save the page as it was.
        if thread::panicking() && !self.failure_saved.load(Ordering::SeqCst) {
            let name = format!("FAILED-{}-{}", self.test, slug(&self.current_step()));
            let path = self.shots.join(format!("{name}.png"));
            let url = format!("{}/session/{}/screenshot", self.driver.url, self.session);
            // The test's runtime is unwinding on this thread: fetch from a thread of its own.
            let target = path.clone();
            let fetched = thread::spawn(move || screenshot_blocking(&url, &target)).join();
            match fetched {
                Ok(Ok(())) => eprintln!("screenshot of the failure: {}", path.display()),
                Ok(Err(e)) => eprintln!("no screenshot of the failure: {e}"),
                Err(_) => eprintln!("no screenshot of the failure: the screenshot thread panicked"),
            }
        }
    }
}

/// Fetches a screenshot from chromedriver's `GET /session/ID/screenshot` at `url` and saves it.
fn screenshot_blocking(url: &str, path: &Path) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let body: Value = client
        .get(url)
        .send()
        .and_then(reqwest::blocking::Response::json)
        .map_err(|e| e.to_string())?;
    let encoded = body["value"]
        .as_str()
        .ok_or_else(|| format!("chromedriver answered {body}"))?;
    let png = decode_base64(encoded).ok_or("chromedriver's screenshot is not base64")?;
    save(path, &png)
}

/// Removes the `FAILED-*.png` screenshots from `dir`.
fn forget_failures(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("FAILED-") && name.ends_with(".png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path`, creating its directory.
fn save(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `text` as a file name: lower case letters, digits and dashes.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// Standard base64 (with or without padding) to bytes; `None` for any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[test]
fn base64_decodes_what_chromedriver_sends() {
    assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_base64("aGk").unwrap(), b"hi");
    assert_eq!(decode_base64("a-b"), None);
}
