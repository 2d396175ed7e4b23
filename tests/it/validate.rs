//! `edgefail validate`.

use crate::harness::Run;

#[test]
fn example_runbook_is_valid() {
    Run::new([
        "validate",
        "-t",
        concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/contoso.yaml"),
    ])
    .run()
    .code(0)
    .stdout_has("valid (2 site(s), 2 pool(s), 2 Edge server(s)");
}
