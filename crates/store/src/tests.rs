//! Unit tests of the store's shared rules.

use super::*;

#[test]
fn quality_score_formula() {
    let q = ComponentQuality {
        sessions: 10,
        ended: 8,
        failed_sessions: 2,
        abandoned: 1,
        commands: 100,
        failed_commands: 10,
    };
    // 0.5*0.8 + 0.3*0.9 + 0.2*0.9 = 0.85
    assert!((q.score() - 85.0).abs() < 1e-9);
    assert_eq!(ComponentQuality::default().score(), 100.0);
}
