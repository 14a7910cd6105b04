"""The explainer attached to every proof bundle: why a run was allowed, what it used, and
the constraints it ran under, as structured fields and as Markdown."""

from typing import Any

from trustfabric.psi import Mode


def explain(
    *, job_id: str, tenant: str, mode: Mode, dataset: dict[str, Any], request_size: int,
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
    allowed = "\n".join(f"- {line}" for line in rationale["allowedBecause"])
    markdown = f"""# Proof explainer — job `{job_id}`

## What was computed
The service computed {computed}. Mode **{mode.value}**{' (cardinality only)' if mode is Mode.PSI_CA else ''}.

## Why it was allowed
{allowed}

## Inputs and provenance
- Dataset `{dataset['id']}` version {dataset['version']}, {dataset['size']} items, hash `{dataset['hash']}`
- {provenance['lineage']}
- Request commitment `{request_commitment}`; response commitment `{response_commitment}`

## Constraints in force
- Request size between {controls['minRequestSize']} and {controls['maxRequestSize']} selectors
- Flags: PSI {'on' if controls['flags']['psi'] else 'off'}, PSI-CA {'on' if controls['flags']['psiCa'] else 'off'}
- Scopes: {', '.join(f'`{s}`' for s in controls['scopes']) or 'none'}
- Quota: {controls['quota']['requests']} requests per {controls['quota']['perSeconds']} s
- {constraints['selectorsSeenByService'][0].upper() + constraints['selectorsSeenByService'][1:]}
"""
    return {"rationale": rationale, "provenance": provenance, "constraints": constraints,
            "markdown": markdown}
