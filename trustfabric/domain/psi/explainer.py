"""The explainer attached to every proof bundle: why a run was allowed, what it used, and
the constraints it ran under. The bundle carries it as structured fields, signed; its
Markdown is rendered from those signed fields when asked for, so it says nothing the
signature does not cover, and a bundle does not store the same facts twice."""

from typing import Any

from trustfabric.domain.psi.protocol import Mode


def explain(
    *, tenant: str, mode: Mode, dataset: dict[str, Any], request_size: int,
    request_commitment: str, response_commitment: str, controls: dict[str, Any],
) -> dict[str, Any]:
    computed = (
        f"which of the {request_size} selectors sent by tenant `{tenant}` are also held in "
        f"partner dataset `{dataset['id']}`"
        if mode is Mode.PSI
        else f"how many of the {request_size} selectors sent by tenant `{tenant}` are also "
             f"held in partner dataset `{dataset['id']}`, and nothing about which ones"
    )
    rationale = {
        "computed": computed,
        "forWhom": tenant,
        "allowedBecause": [
            f"the {mode.value} feature flag is enabled for `{tenant}`",
            f"dataset `{dataset['id']}` is within `{tenant}`'s scopes",
            f"neither `{tenant}` nor partner `{dataset['partner']}` has opted out",
            f"{request_size} selectors lie within the allowed "
            f"{controls['minRequestSize']}–{controls['maxRequestSize']}",
            "the tenant's quota had room for the request",
        ],
    }
    provenance = {
        "dataset": dataset,
        "requestCommitment": request_commitment,
        "responseCommitment": response_commitment,
        "lineage": f"partner `{dataset['partner']}` uploaded version {dataset['version']} "
                   f"({dataset['size']} items, {dataset['hash']}) at {dataset['uploadedAt']}",
    }
    constraints = {
        "mode": mode.value,
        "cardinalityOnly": mode is Mode.PSI_CA,
        "minRequestSize": controls["minRequestSize"],
        "maxRequestSize": controls["maxRequestSize"],
        "flags": controls["flags"],
        "scopes": controls["scopes"],
        "quota": controls["quota"],
        "selectorsSeenByService": "none in clear: the request holds selectors blinded by the "
                                  "client's key, and only their hash is recorded",
    }
    return {"rationale": rationale, "provenance": provenance, "constraints": constraints}


def markdown(bundle: dict[str, Any]) -> str:
    """A signed bundle's explainer for people."""
    rationale, provenance, constraints = (
        bundle["explainer"][part] for part in ("rationale", "provenance", "constraints"))
    dataset = provenance["dataset"]
    allowed = "\n".join(f"- {line}" for line in rationale["allowedBecause"])
    flags, quota = constraints["flags"], constraints["quota"]
    unseen = constraints["selectorsSeenByService"]
    return f"""# Proof explainer — job `{bundle['jobId']}`

## What was computed
The service computed {rationale['computed']}. Mode **{constraints['mode']}**{' (cardinality only)' if constraints['cardinalityOnly'] else ''}.

## Why it was allowed
{allowed}

## Inputs and provenance
- Dataset `{dataset['id']}` version {dataset['version']}, {dataset['size']} items, hash `{dataset['hash']}`
- {provenance['lineage']}
- Request commitment `{provenance['requestCommitment']}`; response commitment `{provenance['responseCommitment']}`

## Constraints in force
- Request size between {constraints['minRequestSize']} and {constraints['maxRequestSize']} selectors
- Flags: PSI {'on' if flags['psi'] else 'off'}, PSI-CA {'on' if flags['psiCa'] else 'off'}
- Scopes: {', '.join(f'`{s}`' for s in constraints['scopes']) or 'none'}
- Quota: {quota['requests']} requests per {quota['perSeconds']} s
- {unseen[0].upper() + unseen[1:]}
"""
