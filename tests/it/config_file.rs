//! The config file through the real binary: `check-config` prints the unknown-key warnings
//! and the first error (exit 2), and `os.environ/NAME` is looked up in the environment the
//! process was started with (issue 12: the environment is read once, by `config::env`).

use std::process::Command;

pub fn check(yaml: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .arg("check-config")
        .arg(&p)
        .env_remove("LITELLM_MASTER_KEY")
        .env_remove("LITEGATE_MASTER_KEY")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_warns_about_unknown_keys_by_name() {
    let (code, out, err) = check(
        "model_list:\n  - model_name: a\n    litellm_params: {model: mock/a, weird: 1}\n\
         general_settings: {store_model_in_db: true}\nfoo: 1\n",
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 model deployment"), "{out}");
    for key in [
        "model_list[0].litellm_params.weird",
        "general_settings.store_model_in_db",
        "(top level).foo",
    ] {
        assert!(
            err.contains(&format!("{key} is not used by litegate; ignored")),
            "{key}: {err}"
        );
    }
}

#[test]
fn warnings_before_an_error_are_still_printed() {
    let (code, _, err) = check(
        "foo: 1\nmodel_list:\n  - model_name: a\n    litellm_params: {model: nope}\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("(top level).foo is not used"), "{err}");
    assert!(
        err.contains(
            "c.yaml: model_list[0].litellm_params.model: expected 'provider/name', got 'nope'"
        ),
        "{err}"
    );
}

#[test]
fn os_environ_values_come_from_the_process_environment() {
    let yaml = "model_list:\n  - model_name: a\n    litellm_params: {model: mock/a, rpm: os.environ/A_RPM}\n\
                general_settings: {master_key: os.environ/A_KEY}\n";
    let (code, _, err) = check(
        yaml,
        &[
            ("A_RPM", "5"),
            ("A_KEY", "sk-0123456789abcdef0123456789abcdef"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = check(yaml, &[("A_RPM", "5")]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("c.yaml: general_settings.master_key: environment variable A_KEY is not set"),
        "{err}"
    );
    let (code, _, err) = check(
        yaml,
        &[
            ("A_RPM", "-5"),
            ("A_KEY", "sk-0123456789abcdef0123456789abcdef"),
        ],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("model_list[0].litellm_params.rpm: expected a non-negative integer"),
        "{err}"
    );
}
