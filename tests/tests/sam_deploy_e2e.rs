//! The deploy artifact as users deploy it: `sam build`'s output (the one binary, zipped by
//! SAM, and the template pointing at it) deployed with `sam deploy` itself onto a local stack
//! that enforces IAM, then one whole batch through the deployed application.
//!
//! Ignored by default: it needs `sam build` first (minutes). `make sam-deploy-test` (part of
//! `make test`) builds, then runs it with `--ignored`; `CASCADE_SAM_BUILD_DIR` overrides the
//! build directory (samconfig.toml's `target/sam/build`).

use cascade_tests::deploy::DeployOptions;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::workspace_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs `sam build` first: make sam-deploy-test"]
async fn the_sam_build_artifact_deployed_with_sam_deploy_refreshes_a_stack() {
    let build = std::env::var_os("CASCADE_SAM_BUILD_DIR")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/sam/build"));
    let pipeline = LocalPipeline::start(PipelineOptions {
        sam_build: Some(build.clone()),
        deploy: DeployOptions {
            poll_seconds: 1,
            ..DeployOptions::default()
        },
        ..PipelineOptions::default()
    })
    .await
    .unwrap();

    // Every function of the template, deployed from the artifact SAM built: one binary.
    let built = build.join("GatekeeperFunction/bootstrap");
    assert!(built.exists(), "{} was built", built.display());
    for (_, name) in &pipeline.deployment.functions {
        assert!(name.starts_with("secret-cascade-"), "{name}");
    }

    let (before, report) = pipeline
        .one_pinned_stack_batch("team/api", "api")
        .await
        .unwrap();
    assert_eq!(
        report["totals"],
        serde_json::json!({"refreshed": 1, "failed": 0, "skipped": 0, "degraded": 0}),
        "{report:#}"
    );
    let now = pipeline
        .clients
        .cloudformation
        .get_template()
        .stack_name("api")
        .send()
        .await
        .unwrap();
    assert_ne!(
        now.template_body(),
        Some(before.as_str()),
        "the reference was pinned"
    );
}
