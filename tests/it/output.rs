//! The operator's terminal and the pipeline's contract: live progress on a
//! terminal only, a clean report, escaped outside text, JSON for every
//! outcome, schemas, completions and the man page, a closed stdout.

use std::path::{Path, PathBuf};

use edgefail::event::{Event, Level, RunOutcome};
use serde_json::{Value, json};

use crate::harness::standin::{Estate, LYNC_STEPS};
use crate::harness::{Events, Run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A YAML file as the JSON value an editor's schema check sees (plain
/// scalars typed by the YAML core schema).
fn yaml_to_json(path: &Path) -> Value {
    use saphyr_parser::{Event as Y, Parser, ScalarStyle};
    let text = std::fs::read_to_string(path).expect("read YAML");
    let mut stack: Vec<(Value, Option<String>)> = Vec::new();
    let mut root = Value::Null;
    let mut parser = Parser::new_from_str(&text);
    let put = |stack: &mut Vec<(Value, Option<String>)>, v: Value, root: &mut Value| match stack
        .last_mut()
    {
        None => *root = v,
        Some((Value::Array(items), _)) => items.push(v),
        Some((Value::Object(map), key)) => match key.take() {
            Some(k) => {
                map.insert(k, v);
            }
            None => *key = Some(v.as_str().map(str::to_string).unwrap_or(v.to_string())),
        },
        Some(_) => unreachable!(),
    };
    while let Some(next) = parser.next_event() {
        let (event, _) = next.expect("YAML parses");
        match event {
            Y::Scalar(text, style, _, _) => {
                let v = if style != ScalarStyle::Plain {
                    json!(text)
                } else if let Ok(n) = text.parse::<i64>() {
                    json!(n)
                } else if let Ok(f) = text.parse::<f64>() {
                    json!(f)
                } else {
                    match text.as_ref() {
                        "true" => json!(true),
                        "false" => json!(false),
                        "null" | "~" | "" => Value::Null,
                        _ => json!(text),
                    }
                };
                put(&mut stack, v, &mut root);
            }
            Y::SequenceStart(..) => stack.push((json!([]), None)),
            Y::MappingStart(..) => stack.push((json!({}), None)),
            Y::SequenceEnd | Y::MappingEnd => {
                let (v, _) = stack.pop().expect("balanced");
                put(&mut stack, v, &mut root);
            }
            Y::StreamEnd => break,
            _ => {}
        }
    }
    root
}

fn failover(topology: &Path) -> Run {
    Run::failover(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

/// What a terminal shows once `raw` is drawn on it: carriage returns, line
/// clears and cursor-up moves applied, other sequences dropped. Enough of
/// a terminal to see what indicatif leaves behind.
fn screen(raw: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut params = String::new();
                let mut end = ' ';
                for p in chars.by_ref() {
                    if p.is_ascii_alphabetic() {
                        end = p;
                        break;
                    }
                    params.push(p);
                }
                let n: usize = params.trim_start_matches('?').parse().unwrap_or(1);
                match end {
                    'K' => lines[row].truncate(col),
                    'A' => row = row.saturating_sub(n),
                    'J' => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.into_iter().map(|l| l.into_iter().collect()).collect()
}

/// On a terminal: a spinner line per running phase with the latest reading,
/// updated as the servers stop one after the other, and none of it left on
/// the screen once the report is written.
#[test]
fn a_terminal_sees_the_spinner_and_the_reading_update_then_a_clean_report() {
    let estate = Estate::new(2);
    estate.edit(|v| {
        for (host, reads) in [
            ("EdgeServer2.contoso.com", 1),
            ("EdgeServer2b.contoso.com", 4),
            ("EdgeServer2c.contoso.com", 10),
        ] {
            v["hosts"][host]["settle_reads"] = json!(reads);
        }
    });
    let topology = estate.topology();
    let mut pty = failover(&topology)
        .yes()
        .env("NO_COLOR", "")
        .env("TERM", "xterm")
        .on_terminal();
    pty.wait_for("Failover complete", 1);
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(0), "{seen}");
    // The spinner: its label, the deadline, and readings that move.
    assert!(
        seen.contains("[2/8] services.stop verify"),
        "no spinner for services.stop verify:\n{seen:?}"
    );
    assert!(seen.contains("deadline"), "no deadline shown:\n{seen:?}");
    for reading in ["1 of 3 server(s) Stopped", "2 of 3 server(s) Stopped"] {
        assert!(seen.contains(reading), "no reading {reading:?}:\n{seen:?}");
    }
    // The screen afterwards: the report, and nothing of the spinner.
    let shown = screen(&seen);
    let text = shown.join("\n");
    assert!(
        !shown
            .iter()
            .any(|l| l.contains(" services.stop verify ")
                || l.contains("server(s) Stopped; not yet")),
        "spinner left on screen:\n{text}"
    );
    for line in [
        "[2/8] services.stop    apply  changed",
        "[2/8] services.stop    verify verified",
        "[7/8] services.start   verify verified",
        "Failover complete: XMPP federation now runs through EdgePool2",
    ] {
        assert!(
            shown.iter().any(|l| l.starts_with(line)),
            "{line:?} is not a line of its own:\n{text}"
        );
    }
    // The plan once; the re-check is not repeated when it matches.
    assert_eq!(
        text.matches("services.stop    check").count(),
        1,
        "the step was printed twice:\n{text}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("steps: 3 changed, 3 verified")),
        "{text}"
    );
}

/// NO_COLOR on a terminal, and no terminal at all: not one escape sequence.
#[test]
fn no_color_and_no_terminal_get_no_escape_codes() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let mut pty = failover(&topology).yes().env("NO_COLOR", "1").on_terminal();
    pty.wait_for("Failover complete", 1);
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(
        !seen.contains('\x1b'),
        "escape codes with NO_COLOR:\n{seen:?}"
    );

    estate.edit(|v| v["sites"]["Site2"]["route"] = json!("EdgeServer1.contoso.com"));
    let out = failover(&topology)
        .dry_run()
        .env("NO_COLOR", "")
        .run()
        .code(4);
    assert!(!out.stdout.contains('\x1b'), "{out:?}");
    assert!(!out.stderr.contains('\x1b'), "{out:?}");
    assert!(out.stdout.contains("steps: "), "{out:?}");
}

/// Hostile text from outside (here a topology value and a journal field)
/// reaches the terminal escaped, and JSON keeps it exact.
#[test]
fn outside_text_is_escaped_for_the_terminal_and_exact_in_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hostile = "Edge\x1b[2J\u{202e}Pool\x07";
    let estate = Estate::new(0);
    let topology = estate.topology();
    // An unknown pool named with escapes: the error names it, escaped.
    let out = Run::plan(&topology)
        .from(hostile)
        .to("EdgePool2")
        .run()
        .code(2);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(!out.stderr.contains('\u{202e}'), "{:?}", out.stderr);
    assert!(
        out.stderr.contains(r"Edge\u{1b}[2J\u{202e}Pool\u{7}"),
        "{:?}",
        out.stderr
    );

    // A journal whose run carries hostile fields: history shows them
    // escaped; its JSON carries them exactly.
    let journal = dir.path().join("journal.jsonl");
    failover(&topology)
        .dry_run()
        .journal(&journal)
        .run()
        .code(4);
    let text = std::fs::read_to_string(&journal).expect("journal");
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("journal line");
            if v["type"] == "run_started" {
                v["operator"] = json!(hostile);
            }
            if v["type"] == "phase_finished" {
                v["summary"] = json!(hostile);
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&journal, edited.join("\n") + "\n").expect("write journal");
    let list = Run::history(&topology).journal(&journal).run().code(0);
    assert!(!list.stdout.contains('\x1b') && !list.stdout.contains('\u{202e}'));
    assert!(
        list.stdout.contains(r"Edge\u{1b}[2J\u{202e}Pool\u{7}"),
        "{list:?}"
    );
    let json = Run::history(&topology)
        .journal(&journal)
        .json()
        .run()
        .code(0);
    assert_eq!(json.json_lines()[0]["operator"], json!(hostile));
    let run_id = json.json_lines()[0]["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    let shown = Run::history(&topology)
        .journal(&journal)
        .arg(&run_id)
        .verbose(1)
        .run()
        .code(0);
    assert!(
        !shown.stdout.contains('\x1b') && !shown.stdout.contains('\u{202e}'),
        "{shown:?}"
    );
    assert!(shown.stdout.contains(r"Pool\u{7}"), "{shown:?}");
}

/// Every failure before a run, under --output json, is a JSON `error`
/// event on stdout with the exit code.
#[test]
fn every_failure_before_a_run_is_an_error_event() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.yaml");
    let cases: Vec<(Run, i32)> = vec![
        (failover(&missing).dry_run().json(), 2),
        (Run::plan(&topology).from("Nope").to("EdgePool2").json(), 2),
        (
            Run::plan(&topology)
                .from("EdgePool1")
                .to("EdgePool2")
                .skip("nine")
                .json(),
            2,
        ),
        (failover(&topology).json(), 2),
        (
            failover(&topology)
                .resume()
                .yes()
                .journal(&dir.path().join("empty.jsonl"))
                .json(),
            7,
        ),
        (Run::new(["plan", "--bogus", "--output", "json"]), 2),
        (
            Run::new([
                "plan",
                "--verify-timeout",
                "18446744073709551615s",
                "--output=json",
            ]),
            2,
        ),
        (Run::history(&missing).arg("nope").json(), 2),
        (Run::validate(&missing).json(), 2),
        (Run::new(["probe", "--output", "json"]), 2),
        (
            Run::rehearse(&topology)
                .from("EdgePool1")
                .to("EdgePool1")
                .json(),
            2,
        ),
    ];
    let ends_in_error = |run: Run, code: i32| -> String {
        let line = run.command_line();
        let out = run.run().code(code);
        let events = out.events();
        match events.last() {
            Some(Event::Error { exit_code, message }) => {
                assert_eq!(*exit_code, code, "{line}");
                assert!(!message.is_empty(), "{line}");
                message.clone()
            }
            other => panic!("{line}: last event is not error: {other:?}\n{out:?}"),
        }
    };
    for (run, code) in cases {
        ends_in_error(run, code);
    }
    // Another failover holds the estate's lock (this test holds it, as a
    // live run does): a failover and an unlock are refused with exit 6
    // before a run starts, so the stream ends with `error`, no
    // `run_started` and no `run_finished`.
    let lock = crate::harness::lock_path(&topology, "contoso.com", "contoso.com");
    std::fs::create_dir_all(lock.parent().expect("a folder")).expect("state dir");
    std::fs::write(
        &lock,
        r#"{"pid":4242,"host":"elsewhere","user":"ops","since":"2026-11-23T03:00:00Z","run_id":"live-run"}"#,
    )
    .expect("lock record");
    let held = std::fs::File::open(&lock).expect("open the lock");
    held.lock().expect("hold the lock");
    for run in [
        failover(&topology).yes().json(),
        Run::unlock(&topology).yes().json(),
    ] {
        let line = run.command_line();
        let message = ends_in_error(run, 6);
        assert!(
            message.contains("another failover of this estate is running")
                && message.contains("pid 4242 on elsewhere by ops"),
            "{line}: {message}"
        );
    }
    let out = failover(&topology).yes().json().run().code(6);
    assert!(
        !out.stdout.contains("run_started") && !out.stdout.contains("run_finished"),
        "{}",
        out.stdout
    );
    drop(held);
}

/// unlock under --output json: each outcome is one `unlock` event on
/// stdout (what was there, what became of it); the question and what was
/// found before it go to stderr.
#[test]
fn unlock_says_each_outcome_as_a_json_event() {
    use edgefail::event::{UnlockOutcome, UnlockTarget};
    let estate = Estate::new(0);
    let topology = estate.topology();
    let lock = crate::harness::lock_path(&topology, "contoso.com", "contoso.com");
    let unlock_event = |out: &crate::harness::Outcome| -> (UnlockOutcome, Option<String>) {
        let lines = out.json_lines();
        assert_eq!(lines.len(), 1, "{}", out.stdout);
        match out.events().last() {
            Some(Event::Unlock {
                target: UnlockTarget::Lock,
                outcome,
                place,
                holder,
                message,
            }) => {
                assert_eq!(Path::new(place), lock, "{}", out.stdout);
                assert!(!message.is_empty());
                (*outcome, holder.clone())
            }
            other => panic!("not an unlock event: {other:?}\n{out:?}"),
        }
    };
    let out = Run::unlock(&topology).json().run().code(0);
    assert_eq!(unlock_event(&out), (UnlockOutcome::Nothing, None));

    let record = r#"{"pid":999999999,"host":"elsewhere","user":"ops","since":"2026-11-22T03:00:00Z","run_id":"old"}"#;
    std::fs::create_dir_all(lock.parent().expect("a folder")).expect("state dir");
    std::fs::write(&lock, record).expect("lock record");
    // No terminal and no --yes: a usage error, as JSON too.
    let out = Run::unlock(&topology).json().run().code(2);
    match out.events().last() {
        Some(Event::Error {
            exit_code: 2,
            message,
        }) => {
            assert!(message.contains("pass --yes"), "{message}")
        }
        other => panic!("{other:?}\n{out:?}"),
    }
    // Declined at the question: exit 5, the record left as it was.
    let mut pty = Run::unlock(&topology).json().on_terminal();
    pty.wait_for("Type 'yes' to proceed", 1);
    pty.type_line("no");
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(5), "{seen}");
    let event: Event = seen
        .lines()
        .filter(|l| l.contains(r#""type":"unlock""#))
        .map(|l| serde_json::from_str(l.trim()).expect("an event"))
        .next_back()
        .unwrap_or_else(|| panic!("no unlock event: {seen}"));
    assert!(
        matches!(
            event,
            Event::Unlock {
                outcome: UnlockOutcome::Declined,
                holder: Some(ref h),
                ..
            } if h.contains("pid 999999999 on elsewhere by ops")
        ),
        "{event:?}"
    );
    assert_eq!(std::fs::read_to_string(&lock).expect("lock"), record);
    // --yes: cleared; the holder is in the event, the record is gone.
    let out = Run::unlock(&topology).yes().json().run().code(0);
    let (outcome, holder) = unlock_event(&out);
    assert_eq!(outcome, UnlockOutcome::Removed);
    assert!(
        holder.is_some_and(|h| h.contains("pid 999999999 on elsewhere by ops")),
        "{out:?}"
    );
    assert!(out.stderr.contains("holds a record left by"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&lock).expect("lock"), "");
    // The event schema knows the `unlock` event.
    let schema = Run::new(["schema", "events"]).run().code(0);
    let schema: Value = serde_json::from_str(&schema.stdout).expect("schema is JSON");
    let events_schema = jsonschema::validator_for(&schema).expect("a valid schema");
    for line in out.json_lines() {
        assert!(events_schema.is_valid(&line), "{line}");
    }
    assert!(!events_schema.is_valid(&json!({"type": "unlock", "target": "lease"})));
}

/// validate --output json: every finding with its place, then the verdict.
#[test]
fn validate_lists_every_finding_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "version: 1\nxmpp: { domain: contoso.com, a_record: xmpp.contoso.com, port: 99999 }\nbogus: 1\n",
    )
    .expect("write");
    let out = Run::validate(&path).json().run().code(2);
    let events = out.events();
    let findings: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Finding { level, message, at } => Some((*level, message, at)),
            _ => None,
        })
        .collect();
    assert!(findings.len() >= 3, "{out:?}");
    assert!(findings.iter().all(|(l, _, at)| *l == Level::Error
        && at.file.ends_with("bad.yaml")
        && at.line > 0
        && at.column > 0));
    assert!(
        findings.iter().any(|(_, _, at)| at.field == "xmpp.port"),
        "{out:?}"
    );
    assert!(
        findings.iter().any(|(_, _, at)| at.field == "bogus"),
        "{out:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Validated { valid: false, errors, .. } if *errors == findings.len())),
        "{out:?}"
    );
    assert!(matches!(
        events.last(),
        Some(Event::Error { exit_code: 2, .. })
    ));

    let good = Run::validate(&repo().join("runbooks/contoso.yaml"))
        .json()
        .run()
        .code(0);
    assert!(matches!(
        good.events().last(),
        Some(Event::Validated {
            valid: true,
            errors: 0,
            ..
        })
    ));
}

/// The schemas: the example topology and a recorded run (a drill, which
/// ends with one run_finished) validate against them; a topology with an inline secret or a wrong type does not.
#[test]
fn the_schemas_validate_the_example_and_a_recorded_run() {
    let schema = |what: &str| -> Value {
        let out = Run::new(["schema", what]).run().code(0);
        serde_json::from_str(&out.stdout).expect("schema is JSON")
    };
    let topology_schema = jsonschema::validator_for(&schema("topology")).expect("a valid schema");
    let example = repo().join("runbooks/contoso.yaml");
    let as_json = yaml_to_json(&example);
    let problems: Vec<String> = topology_schema
        .iter_errors(&as_json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "contoso.yaml: {problems:#?}");
    let mut bad = as_json.clone();
    bad["dns"]["tsig"]["secret"] = json!("c2VjcmV0");
    assert!(!topology_schema.is_valid(&bad), "an inline secret passed");
    let mut bad = as_json.clone();
    bad["xmpp"]["port"] = json!("5269x");
    assert!(!topology_schema.is_valid(&bad));

    let events_schema = jsonschema::validator_for(&schema("events")).expect("a valid schema");
    let recorded = Run::rehearse(&example)
        .from("EdgePool1")
        .to("EdgePool2")
        .inject("route-fails")
        .delay_ms(0)
        .json()
        .run()
        .code(0);
    // A drill's failed run ends inside rehearsal_resume: the stream has
    // one run_finished, the rehearsal's.
    let events = recorded.events();
    assert_eq!(events.run_endings().len(), 1, "{}", recorded.stdout);
    assert_eq!(recorded.run_finished().0, RunOutcome::Completed);
    let resume = events
        .iter()
        .find_map(|e| match e {
            Event::RehearsalResume { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("rehearsal_resume");
    assert!(resume.contains("route.set failed"), "{resume}");
    // The rehearsal accepts its self-signed certificate explicitly: the
    // step's summary, which the human report always prints, says so.
    let federation = events.last_finished(edgefail::steps::StepId::FederationCheck);
    assert!(
        federation
            .summary
            .contains("certificate chain is NOT trusted"),
        "{}",
        federation.json()
    );
    let lines = recorded.json_lines();
    assert!(lines.len() > 20);
    for line in &lines {
        let problems: Vec<String> = events_schema
            .iter_errors(line)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{line}: {problems:#?}");
    }
    let failed = Run::validate(&example.with_extension("missing"))
        .json()
        .run();
    for line in failed.json_lines() {
        assert!(events_schema.is_valid(&line), "{line}");
    }
    assert!(!events_schema.is_valid(&json!({"type": "run_finished"})));
}

/// Completions for every shell and the man page: generated and non-empty.
#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Run::new(["completions", shell]).run().code(0);
        assert!(out.stdout.contains("failover"), "{shell}: {out:?}");
        assert!(out.stdout.contains("verify-timeout"), "{shell}: {out:?}");
    }
    let man = Run::new(["man"]).run().code(0);
    assert!(man.stdout.starts_with(".ie") || man.stdout.contains(".TH edgefail"));
    assert!(man.stdout.contains("failover"), "{man:?}");
    // A page per subcommand, with its exit codes.
    assert!(man.stdout.contains(".TH edgefail-plan 1"), "{man:?}");
    assert!(man.stdout.matches("Exit codes:").count() >= 10, "{man:?}");
    Run::new(["completions", "cmd"]).run().code(2);
}

/// Every subcommand's help ends with examples and its exit codes.
#[test]
fn every_help_has_examples_and_exit_codes() {
    for command in [
        "validate",
        "plan",
        "failover",
        "history",
        "unlock",
        "probe",
        "rehearse",
        "schema",
        "completions",
        "man",
    ] {
        let out = Run::new([command, "--help"]).run().code(0);
        let examples = out.stdout.find("Examples:").expect(command);
        let exits = out.stdout.rfind("Exit codes:").expect(command);
        assert!(examples < exits, "{command}: {}", out.stdout);
        assert!(out.stdout[exits..].contains("  0 "), "{command}");
    }
    let plan = Run::new(["plan", "--help"]).run().code(0);
    assert!(!plan.stdout.contains("--resume"), "{}", plan.stdout);
    assert!(plan.stdout.contains("  4    changes are pending"));
}

/// Durations: one form everywhere, bounded when read. `--timestamps`:
/// each step line starts with the UTC time its phase started; without it,
/// none does.
#[test]
fn durations_take_one_form_and_are_bounded_and_timestamps_come_with_the_flag() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let stamped = |line: &str| {
        let b = line.as_bytes();
        b.len() > 14 && b[2] == b':' && b[5] == b':' && b[8] == b'.' && &line[12..15] == "Z ["
    };
    let out = failover(&topology)
        .dry_run()
        .args(["--command-timeout", "2m", "--verify-timeout", "45"])
        .run()
        .code(4);
    assert!(!out.stdout.lines().any(stamped), "{}", out.stdout);
    let out = failover(&topology)
        .dry_run()
        .args(["--verify-timeout", "30s", "--timestamps"])
        .run()
        .code(4);
    let steps: Vec<&str> = out.stdout.lines().filter(|l| l.contains("/8] ")).collect();
    assert!(
        !steps.is_empty() && steps.iter().all(|l| stamped(l)),
        "{}",
        out.stdout
    );
    for bad in ["0", "0s", "25h", "18446744073709551615", "ten", "500ms"] {
        let out = failover(&topology)
            .dry_run()
            .args(["--verify-timeout", bad])
            .run()
            .code(2);
        assert!(out.stderr.contains("--verify-timeout"), "{bad}: {out:?}");
    }
    Run::new(["probe", "--host", "127.0.0.1", "--domain", "x.test"])
        .args(["--connect-timeout", "99999999999"])
        .run()
        .code(2);
    let out = Run::rehearse(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .args(["--delay", "11s"])
        .run()
        .code(2);
    assert!(out.stderr.contains("at most 10s"), "{out:?}");
}

/// A closed stdout: no panic, a quiet end (exit 0 for commands that only
/// print).
#[test]
fn a_closed_stdout_ends_quietly() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal.jsonl");
    for _ in 0..3 {
        failover(&topology)
            .dry_run()
            .journal(&journal)
            .run()
            .code(4);
    }
    let bin = crate::harness::edgefail_bin();
    for (args, code) in [
        ("history --output json", 0),
        ("history", 0),
        ("schema events", 0),
        ("man", 0),
        ("completions bash", 0),
    ] {
        let line = format!(
            "'{}' {args} -t '{}' --journal '{}' 2>'{}' | (exec 0<&-; sleep 0.3); exit ${{PIPESTATUS[0]}}",
            bin.display(),
            topology.display(),
            journal.display(),
            dir.path().join("stderr").display()
        );
        let line = if args.starts_with("history") {
            line
        } else {
            format!(
                "'{}' {args} 2>'{}' | (exec 0<&-; sleep 0.3); exit ${{PIPESTATUS[0]}}",
                bin.display(),
                dir.path().join("stderr").display()
            )
        };
        let status = std::process::Command::new("bash")
            .args(["-c", &line])
            .env("NO_COLOR", "1")
            .status()
            .expect("bash");
        let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
        assert_eq!(status.code(), Some(code), "{args}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
    }
    // A run keeps going to its own end and exit code, its journal complete.
    let skips: String = ["dns.a", "dns.srv", "port.check", "federation.check"]
        .iter()
        .map(|s| format!(" --skip {s}"))
        .collect();
    for output in ["json", "human"] {
        let line = format!(
            "'{}' failover --dry-run -t '{}' --journal '{}' --from EdgePool1 --to EdgePool2{skips} --output {output} 2>'{}' | (exec 0<&-; sleep 0.3); exit ${{PIPESTATUS[0]}}",
            bin.display(),
            topology.display(),
            journal.display(),
            dir.path().join("stderr").display()
        );
        let status = std::process::Command::new("bash")
            .args(["-c", &line])
            .env("NO_COLOR", "1")
            .status()
            .expect("bash");
        let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
        assert_eq!(status.code(), Some(4), "dry run, {output}: {stderr}");
        assert!(!stderr.contains("panicked"), "{output}: {stderr}");
    }
    let runs = std::fs::read_to_string(&journal).expect("journal");
    assert_eq!(
        runs.lines()
            .filter(|l| l.contains("\"run_finished\""))
            .count(),
        5,
        "three dry runs before, two with a closed stdout, each recorded to its end"
    );
}

/// probe's JSON document says what it is.
#[test]
fn the_probe_document_has_type_and_format() {
    let out = Run::new(["probe", "--host", "127.0.0.1", "--port", "1", "--domain"])
        .args(["contoso.com", "--connect-timeout", "1s", "--output", "json"])
        .run()
        .code(1);
    let doc = &out.json_lines()[0];
    assert_eq!(doc["type"], "probe", "{doc}");
    assert_eq!(doc["format"], 1, "{doc}");
    assert_eq!(doc["passed"], false, "{doc}");
}
