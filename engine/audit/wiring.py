"""The wiring: open a trail's store and keys from settings and hook compliance onto it.

The ledger's writer knows nothing of compliance; here the pipeline's ``[audit]`` table
becomes a store, a keyring, a signing key, a checkpoint folder and a
:class:`~engine.compliance.rules.policy.CompliancePolicy` that every trail opened from
these resources calls as its :class:`~engine.ledger.hooks.EventHook`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compliance.approvals import approved_hashes
from engine.compliance.rules.policy import CompliancePolicy
from engine.config.rules_file import load_rules_file
from engine.ledger.clock import now_text
from engine.ledger.keys import HmacKeyring, SigningKey, load_keyring, load_signing_key
from engine.ledger.store import AuditStore, default_store_url
from engine.ledger.writer import AuditTrail
from engine.model.audit import AuditSettings
from engine.redact import redact
from engine.settings import EngineSettings

__all__ = ["AuditResources", "open_resources", "policy_for"]


@dataclass
class AuditResources:
    """What a trail needs, opened from settings and a workspace: close it when done."""

    store: AuditStore
    keyring: HmacKeyring
    signing: SigningKey | None
    checkpoint_dir: Path
    settings: AuditSettings
    workspace: Path
    # The compliance policy its trails apply (rules, masking, risk); None: base risk only.
    policy: CompliancePolicy | None = None
    # The environment's settings (AUDIT_*, COMPLIANCE_*_ENABLED)
    env: EngineSettings = field(default_factory=EngineSettings.defaults)

    def trail(self, producer: str, **kwargs: Any) -> AuditTrail:
        """A writer of ``producer``'s chain, with the policy as its hook."""
        kwargs.setdefault("hooks", (self.policy,) if self.policy is not None else ())
        kwargs.setdefault("redactor", redact)
        return AuditTrail(
            self.store,
            self.keyring,
            producer=producer,
            signing=self.signing,
            checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.settings.checkpoint_every,
            flush_every=self.settings.flush_every,
            mask_fields=self.settings.mask_fields,
            **kwargs,
        )

    def close(self) -> None:
        try:
            if self.policy is not None:
                self.policy.close()
        finally:
            self.store.close()


def policy_for(resources: AuditResources) -> CompliancePolicy:
    """The compliance policy of ``resources``' settings, approvals read from its store."""
    store = resources.store
    return CompliancePolicy.from_settings(
        resources.settings,
        hmac_key=resources.keyring.current,
        is_approved=lambda sha: sha in approved_hashes(store),
        now_text=now_text,
        load_rules=load_rules_file,
        env=resources.env,
    )


def open_resources(
    settings: AuditSettings,
    workspace: Path,
    *,
    store_url: str | None = None,
    create: bool = True,
    env: EngineSettings | None = None,
) -> AuditResources:
    """Open the store and load (or, with ``create``, generate) the keys. ``env``: the
    environment's settings (AUDIT_SECRET_KEY, ...; default none)."""
    env = env if env is not None else EngineSettings.defaults()
    key = settings.key or env.audit_secret_key
    signing_key = settings.signing_key or env.audit_signing_key
    keyring = load_keyring(
        workspace,
        key=key.get_secret_value() if key else None,
        key_id=settings.key_id,
        previous=[k.get_secret_value() for k in settings.previous_keys],
        create=create,
    )
    signing = load_signing_key(
        workspace,
        key=signing_key.get_secret_value() if signing_key else None,
        create=create,
        source="[audit] signing_key" if settings.signing_key else "AUDIT_SIGNING_KEY",
    )
    url = store_url or settings.store or default_store_url(workspace)
    checkpoint_dir = Path(settings.checkpoint) if settings.checkpoint else workspace / "checkpoints"
    store = AuditStore(url, create=create)
    resources = AuditResources(
        store, keyring, signing, checkpoint_dir, settings, workspace, env=env
    )
    try:
        resources.policy = policy_for(resources)
    except BaseException:
        store.close()
        raise
    return resources
