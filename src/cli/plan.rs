//! `install|upgrade|uninstall ... --plan`: prints the engine's `ChangePlan`; changes nothing.

use super::exit;
use super::out::{self, errln, outln};
use color_eyre::eyre::Result;
use ptui_engine::Engine;
use ptui_engine::jobs::fanout::FanoutRequest;

pub fn print(engine: &Engine, req: &FanoutRequest, json: bool) -> Result<i32> {
    let plan = match engine.plan_fanout(req) {
        Ok(p) => p,
        Err(e) => return Ok(out::request_error(&e)),
    };
    if json {
        out::json_pretty(&plan)?;
        return Ok(exit::OK);
    }
    outln!(
        "plan: {} {} v{} on {} server(s), {} batch(es), concurrency {}{}",
        plan.action,
        plan.app,
        plan.version,
        plan.servers.len(),
        plan.batches.len(),
        plan.concurrency,
        plan.max_fail
            .map(|m| format!(", stops after {m} failure(s)"))
            .unwrap_or_default()
    );
    outln!(
        "script: {} sha256 {} ({})",
        plan.script,
        plan.script_sha256,
        plan.pin
    );
    for (i, b) in plan.batches.iter().enumerate() {
        outln!("batch {}: {}", i + 1, b.join(", "));
    }
    for s in &plan.servers {
        let inputs: Vec<String> = s.inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!(
            "  {:<16} {:<8} {:<12} inputs: {}",
            s.name,
            s.change,
            s.status,
            inputs.join(" ")
        );
        for c in &s.changes {
            outln!(
                "  {:<16}   {}: {} -> {}",
                "",
                c.input,
                c.from.as_deref().unwrap_or("(unset)"),
                c.to.as_deref().unwrap_or("(unset)")
            );
        }
    }
    for s in &plan.skipped {
        outln!("skipped {} ({}): {}", s.name, s.kind, s.reason);
    }
    errln!("nothing was changed: this is a plan");
    Ok(exit::OK)
}
