//! Generates a large source tree for benchmarking `vexil lint` (docs/benchmarks.md):
//!
//! ```text
//! cargo run --release -p vexil-cli --example gen_lint_tree -- DIR [FILES] [FLAGS]
//! ```
//!
//! `DIR/flags.yaml` gets FLAGS flags (default 1,000): release, experiment, ops and permission
//! flags, some expired, some expiring, some without an owner. `DIR/src/` gets FILES files
//! (default 100,000) spread over 100 packages, in every language lint reads (Rust, Python,
//! TypeScript, Go, Java, Kotlin, Ruby, C#, YAML, JSON), each about 40 lines: SDK calls and
//! literals naming flags, comments and longer strings naming them (decoys), and ordinary code.
//! About one file in 500 calls an SDK with a key that is no flag. The output is the same for the
//! same arguments (a fixed pseudo-random sequence).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic, good enough to spread references around.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen_lint_tree DIR [FILES] [FLAGS]");
        std::process::exit(2);
    };
    let files: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let flags: usize = args.next().map_or(Ok(1_000), |s| s.parse())?;
    std::fs::create_dir_all(dir.join("src"))?;

    let keys: Vec<String> = (0..flags).map(key).collect();
    write_flags(&dir, &keys)?;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::new();
    for i in 0..files {
        let package = dir.join("src").join(format!("pkg{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&package)?;
        }
        let lang = LANGS[i % LANGS.len()];
        text.clear();
        // Three to six references each; about one file in 500 also names a key that is no flag.
        let refs: Vec<&str> = (0..3 + rng.below(4))
            .map(|_| keys[rng.below(keys.len())].as_str())
            .collect();
        let unknown = (i % 499 == 0).then(|| format!("missing_flag_{i}"));
        source(lang, &refs, unknown.as_deref(), i, &mut text);
        let path = package.join(format!("file{i:06}.{}", lang.ext()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        f.write_all(text.as_bytes())?;
        f.flush()?;
    }
    println!(
        "wrote {} with {flags} flags and {files} files",
        dir.display()
    );
    Ok(())
}

fn key(i: usize) -> String {
    const WORDS: [&str; 8] = [
        "checkout",
        "search",
        "billing",
        "profile",
        "banner",
        "export",
        "onboarding",
        "reports",
    ];
    format!(
        "{}_{}_{i}",
        WORDS[i % WORDS.len()],
        ["v2", "beta", "rollout", "new"][i / 8 % 4]
    )
}

fn write_flags(dir: &Path, keys: &[String]) -> std::io::Result<()> {
    let mut out = String::from("flags:\n");
    for (i, key) in keys.iter().enumerate() {
        let _ = writeln!(out, "  {key}:");
        match i % 10 {
            0 => out.push_str("    kind: ops\n    owner: sre\n"),
            1 => out.push_str("    kind: permission\n    owner: billing\n"),
            // Expired.
            2 => out.push_str("    kind: release\n    owner: web\n    expires: 2025-06-30\n"),
            // Expiring within 14 days of 2026-03-20.
            3 => out.push_str("    kind: experiment\n    owner: growth\n    expires: 2026-03-30\n"),
            // No owner.
            4 => out.push_str("    kind: release\n    expires: 2026-12-31\n"),
            _ => out.push_str("    kind: release\n    owner: team\n    expires: 2026-12-31\n"),
        }
        out.push_str("    rollout: 50\n");
    }
    std::fs::write(dir.join("flags.yaml"), out)
}

#[derive(Clone, Copy)]
enum Lang {
    Rust,
    Python,
    TypeScript,
    Go,
    Java,
    Kotlin,
    Ruby,
    CSharp,
    Yaml,
    Json,
}

const LANGS: [Lang; 10] = [
    Lang::Rust,
    Lang::Python,
    Lang::TypeScript,
    Lang::Go,
    Lang::Java,
    Lang::Kotlin,
    Lang::Ruby,
    Lang::CSharp,
    Lang::Yaml,
    Lang::Json,
];

impl Lang {
    fn ext(self) -> &'static str {
        match self {
            Lang::Rust => "rs",
            Lang::Python => "py",
            Lang::TypeScript => "ts",
            Lang::Go => "go",
            Lang::Java => "java",
            Lang::Kotlin => "kt",
            Lang::Ruby => "rb",
            Lang::CSharp => "cs",
            Lang::Yaml => "yaml",
            Lang::Json => "json",
        }
    }
}

/// One file: filler code around SDK calls and literals for `refs`, comment and long-string
/// decoys, and an SDK call with `unknown` when given.
fn source(lang: Lang, refs: &[&str], unknown: Option<&str>, n: usize, out: &mut String) {
    let first = refs.first().copied().unwrap_or("none");
    match lang {
        Lang::Rust => {
            let _ = writeln!(out, "//! Module {n}. Mentions {first} in a comment.\n");
            let _ = writeln!(
                out,
                "pub fn handler_{n}(client: &Client, ctx: &Context) -> u64 {{"
            );
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    // client.bool_value(\"{r}\", ctx, false) is called below."
                );
                let _ = writeln!(
                    out,
                    "    let on_{i} = client.bool_value(\"{r}\", ctx, false);"
                );
                let _ = writeln!(out, "    let note_{i} = \"{r} is rolling out\";");
                let _ = writeln!(
                    out,
                    "    let total_{i}: u64 = (0..{i}).map(|x| x * 2).sum();"
                );
            }
            if let Some(k) = unknown {
                let _ = writeln!(out, "    let _typo = client.is_enabled(\"{k}\", ctx);");
            }
            let _ = writeln!(out, "    let raw = r#\"a \"quoted\" {first}\"#;");
            out.push_str("    raw.len() as u64\n}\n");
        }
        Lang::Python => {
            let _ = writeln!(out, "\"\"\"Module {n}, about {first}.\"\"\"\n");
            let _ = writeln!(out, "def handler_{n}(client, ctx):");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(out, "    # client.get_boolean_value('{r}', False)");
                let _ = writeln!(out, "    on_{i} = client.get_boolean_value(\"{r}\", False)");
                let _ = writeln!(out, "    label_{i} = f\"{{on_{i}}} for {r}\"");
                let _ = writeln!(out, "    total_{i} = sum(x * 2 for x in range({i}))");
            }
            if let Some(k) = unknown {
                let _ = writeln!(
                    out,
                    "    typo = client.get_string_value(flag_key=\"{k}\", default_value=\"a\")"
                );
            }
            out.push_str("    return None\n");
        }
        Lang::TypeScript => {
            let _ = writeln!(out, "// Module {n}: uses {first}.");
            let _ = writeln!(out, "export function handler{n}(client: Client): number {{");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(out, "  const on{i} = client.getBooleanValue('{r}', false);");
                let _ = writeln!(out, "  const msg{i} = `flag ${{on{i}}}: {r} enabled`;");
                let _ = writeln!(out, "  const re{i} = /\"{r}\"/g;");
                let _ = writeln!(
                    out,
                    "  const total{i} = [1, 2, 3].map((x) => x / 2).length;"
                );
            }
            if let Some(k) = unknown {
                let _ = writeln!(out, "  const typo = client.getStringValue(\"{k}\", 'a');");
            }
            out.push_str("  return 0;\n}\n");
        }
        Lang::Go => {
            let _ = writeln!(out, "package pkg\n\n// Handler{n} uses {first}.");
            let _ = writeln!(out, "func Handler{n}(ctx context.Context) int {{");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\ton{i}, _ := client.BooleanValue(ctx, \"{r}\", false, ec)"
                );
                let _ = writeln!(out, "\traw{i} := `{r} in a raw string`");
                let _ = writeln!(out, "\t_, _ = on{i}, raw{i}");
            }
            if let Some(k) = unknown {
                let _ = writeln!(out, "\t_, _ = client.StringValue(ctx, \"{k}\", \"a\", ec)");
            }
            out.push_str("\treturn 0\n}\n");
        }
        Lang::Java => {
            let _ = writeln!(out, "/* Uses {first}. */\nclass Handler{n} {{");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    boolean on{i}() {{ return client.getBooleanValue(\"{r}\", false); }}"
                );
                let _ = writeln!(out, "    String note{i} = \"{r} and more\";");
                let _ = writeln!(out, "    char c{i} = '\"';");
            }
            if let Some(k) = unknown {
                let _ = writeln!(
                    out,
                    "    String typo = client.getStringValue(\"{k}\", \"a\");"
                );
            }
            out.push_str("}\n");
        }
        Lang::Kotlin => {
            let _ = writeln!(out, "// Uses {first}.\nclass Handler{n} {{");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    val on{i} = client.getBooleanValue(\"{r}\", false)"
                );
                let _ = writeln!(out, "    val label{i} = \"${{on{i}}} {r}\"");
            }
            if let Some(k) = unknown {
                let _ = writeln!(out, "    val typo = client.getStringValue(\"{k}\", \"a\")");
            }
            out.push_str("}\n");
        }
        Lang::Ruby => {
            let _ = writeln!(out, "# Uses {first}.\nclass Handler{n}");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  ON_{i} = client.fetch_boolean_value(flag_key: \"{r}\", default_value: false)"
                );
                let _ = writeln!(out, "  NOTE_{i} = \"#{{ON_{i}}} {r}\"");
            }
            if let Some(k) = unknown {
                let _ = writeln!(
                    out,
                    "  TYPO = client.fetch_string_value(flag_key: '{k}', default_value: 'a')"
                );
            }
            out.push_str("end\n");
        }
        Lang::CSharp => {
            let _ = writeln!(out, "// Uses {first}.\nclass Handler{n} {{");
            for (i, r) in refs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    bool On{i}() => client.GetBooleanValueAsync(\"{r}\", false).Result;"
                );
                let _ = writeln!(out, "    string Path{i} = @\"C:\\flags\\{r}\";");
            }
            if let Some(k) = unknown {
                let _ = writeln!(
                    out,
                    "    string Typo = client.GetStringValueAsync(\"{k}\", \"a\").Result;"
                );
            }
            out.push_str("}\n");
        }
        Lang::Yaml => {
            let _ = writeln!(
                out,
                "# {first}: commented out\nservice: handler-{n}\nfeatures:"
            );
            for r in refs {
                let _ = writeln!(out, "  {r}: true");
            }
            let _ = writeln!(out, "description: enables {first} for everyone");
        }
        Lang::Json => {
            let quoted: Vec<String> = refs.iter().map(|r| format!("\"{r}\"")).collect();
            let _ = writeln!(
                out,
                "{{\n  \"service\": \"handler-{n}\",\n  \"flags\": [{}],\n  \"note\": \"{first} is on\"\n}}",
                quoted.join(", ")
            );
        }
    }
}
