//! The project's own rules (`rules/sigma/` in the repository), compiled into the binary so
//! that `soc run --demo` and a correlator without a configured rule directory still detect.
//! A test checks that this list and the directory hold the same files with the same text.

use super::{RuleLoadError, SigmaRules};

/// (path in the repository, YAML) of every project rule.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "rules/sigma/linux/sshd/lnx_sshd_failed_password.yml",
        include_str!("../../../rules/sigma/linux/sshd/lnx_sshd_failed_password.yml"),
    ),
    (
        "rules/sigma/linux/sshd/lnx_sshd_password_guessing_correlation.yml",
        include_str!("../../../rules/sigma/linux/sshd/lnx_sshd_password_guessing_correlation.yml"),
    ),
    (
        "rules/sigma/linux/sudo/lnx_sudo_user_not_in_sudoers.yml",
        include_str!("../../../rules/sigma/linux/sudo/lnx_sudo_user_not_in_sudoers.yml"),
    ),
    (
        "rules/sigma/windows/process_creation/proc_creation_win_certutil_download.yml",
        include_str!("../../../rules/sigma/windows/process_creation/proc_creation_win_certutil_download.yml"),
    ),
    (
        "rules/sigma/windows/process_creation/proc_creation_win_powershell_encoded_command.yml",
        include_str!("../../../rules/sigma/windows/process_creation/proc_creation_win_powershell_encoded_command.yml"),
    ),
    (
        "rules/sigma/windows/process_creation/proc_creation_win_whoami_user_context.yml",
        include_str!("../../../rules/sigma/windows/process_creation/proc_creation_win_whoami_user_context.yml"),
    ),
];

impl SigmaRules {
    /// The project's rules ([`BUILTIN_RULES`]).
    pub fn builtin() -> (SigmaRules, Vec<RuleLoadError>) {
        SigmaRules::from_sources(BUILTIN_RULES.iter().copied())
    }
}
