//! The tool policy of SPEC §2: classify a tool as disabled, requiring
//! approval or auto-approved from `security-config.json`.

use crate::event::ApprovalMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToolClass {
    AutoApproved,
    RequiresApproval,
    Disabled,
}

impl ToolClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolClass::AutoApproved => "auto_approved",
            ToolClass::RequiresApproval => "requires_approval",
            ToolClass::Disabled => "disabled",
        }
    }
}

/// TODO(config issue): the fine-grained rules with globset matchers.
#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: ApprovalMode,
}

impl Policy {
    /// The class of a tool under this policy.
    pub fn classify(&self, tool: &str) -> ToolClass {
        self.explain(tool).0
    }

    /// The class and the rule that decided it, e.g. `"pattern admin_*"`.
    pub fn explain(&self, _tool: &str) -> (ToolClass, String) {
        todo!("Policy::explain")
    }

    /// Every tool named in any list's `tools` (such a tool is never new).
    pub fn named_tools(&self) -> Vec<String> {
        todo!("Policy::named_tools")
    }
}
