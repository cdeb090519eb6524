//! What the shells print for people: `help` fits a terminal and says a thing once.

use crate::common::{run, stdout};

#[test]
fn every_shells_help_fits_80_columns_and_repeats_nothing() {
    let home = tempfile::tempdir().unwrap();
    for &component in session_buddy_components::COMPONENTS {
        let o = run(
            home.path(),
            &["shell", component, "--no-banner", "-c", "help"],
        );
        assert!(o.status.success(), "{component}");
        let text = stdout(&o);
        assert!(text.contains("Built-ins:"), "{component}: {text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{component}: a line of {} columns: {line}",
                line.chars().count()
            );
        }
        if component == "crackerjack" {
            assert_eq!(
                text.matches(".crackerjack.toml").count(),
                1,
                "said once: {text}"
            );
        }
    }
}
