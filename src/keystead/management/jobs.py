"""Management API jobs: the verification email (contract §10.9).

    POST /jobs/verification-email  update:users            201 {id, type, status, created_at}
    GET  /jobs/{id}                read:users|create:users  200 the same job / 404

The mail goes out at once (keystead/email_verification.py, the reset mail's sender), so every job
is `completed` when created. Jobs are rows of the `jobs` table (storage/repositories/jobs.py),
so a job made through one worker or replica is read through any other, and survives a restart.
Each is readable for JOB_LIFETIME, then a 404 like an unknown one; `keystead db purge`
(storage/purge.py) deletes it after.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.email_tickets import VERIFICATION_TICKET_LIFETIME
from keystead.deps import get_state
from keystead.email_verification import issue_link, send_verification_mail
from keystead.errors import BadRequest, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.schemas import ANY, refuse_unsupported, string
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import iso
from keystead.management.tickets import NO_EMAIL, check_client, find_user
from keystead.storage.repositories.jobs import Job, SqlJobs

JOB_LIFETIME: Final = 86_400.0  # seconds
JOB_NOT_FOUND: Final = "Job not found."

UNSUPPORTED: Final = frozenset({"identity", "organization_id"})
CREATE_VERIFICATION_EMAIL: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user_id"],
    "properties": {
        "user_id": string(1, 512),
        "client_id": string(1, 64),
        **dict.fromkeys(sorted(UNSUPPORTED), ANY),
    },
}


async def create_verification_email(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    body = await read_body(request, CREATE_VERIFICATION_EMAIL)
    refuse_unsupported(body, UNSUPPORTED)
    client_id = body.get("client_id")
    await check_client(state, client_id)
    user = await find_user(state, body["user_id"])
    if not user.email:
        raise BadRequest(NO_EMAIL)
    url = issue_link(state, user, lifetime=VERIFICATION_TICKET_LIFETIME, client_id=client_id)
    now = state.clock.now()
    job = Job(
        id="job_" + secrets.token_hex(8),  # Auth0's shape: job_ + 16 characters
        type="verification_email",
        status="completed",
        created_at=now,
        expires_at=now + JOB_LIFETIME,
    )
    async with state.transaction() as session:
        await SqlJobs(session).add(job)
        await record_change(
            state,
            session,
            request,
            caller,
            "Send an email address verification email",
            target={"user_id": user.user_id, "job_id": job.id},
            user_id=user.user_id,
        )
    days = VERIFICATION_TICKET_LIFETIME // 86_400
    await send_verification_mail(state.settings, user.email, url, days=days)
    return json_response(job_json(job), 201)


async def get_job(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        found = await SqlJobs(session).get(request.path_params["id"], now=state.clock.now())
    if found is None:
        raise NotFound(JOB_NOT_FOUND, error_code="inexistent_job")
    return json_response(job_json(found))


def job_json(job: Job) -> dict[str, Any]:
    """A job as Auth0 answers it: its fields, then whatever else that type of job carries."""
    return {
        "type": job.type,
        "status": job.status,
        "created_at": iso(job.created_at),
        "id": job.id,
        **job.details,
    }
