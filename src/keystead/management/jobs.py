"""Management API jobs: the verification email (contract §10.9).

    POST /jobs/verification-email  update:users            201 {id, type, status, created_at}
    GET  /jobs/{id}                read:users|create:users  200 the same job / 404

The mail goes out at once (keystead/email_verification.py, the reset mail's sender), so every job
is `completed` when created. Job records live only in this process's memory, the last
JOBS_KEPT of them for JOB_LIFETIME: enough for an SDK that reads back the job it just made, not a
history (a job made on another replica, or before a restart, is a 404).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.email_tickets import VERIFICATION_TICKET_LIFETIME
from keystead.deps import AppState, get_state
from keystead.email_verification import issue_link, send_verification_mail
from keystead.errors import BadRequest, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.schemas import ANY, refuse_unsupported, string
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import iso
from keystead.management.tickets import NO_EMAIL, check_client, find_user

JOBS_KEPT: Final = 1000
JOB_LIFETIME: Final = 86_400.0  # seconds
JOB_NOT_FOUND: Final = "Job not found."
_JOBS = "management.jobs"  # key in AppState.extras

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
    job = _remember(
        state,
        {
            "type": "verification_email",
            "status": "completed",
            "created_at": iso(state.clock.now()),
            "id": "job_" + secrets.token_hex(8),  # Auth0's shape: job_ + 16 characters
        },
    )
    async with state.transaction() as session:
        await record_change(
            state,
            session,
            request,
            caller,
            "Send an email address verification email",
            target={"user_id": user.user_id, "job_id": job["id"]},
            user_id=user.user_id,
        )
    days = VERIFICATION_TICKET_LIFETIME // 86_400
    await send_verification_mail(state.settings, user.email, url, days=days)
    return json_response(job, 201)


async def get_job(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    jobs = _jobs(state)
    found = jobs.get(request.path_params["id"])
    if found is None:
        raise NotFound(JOB_NOT_FOUND, error_code="inexistent_job")
    return json_response(found[1])


def _jobs(state: AppState) -> OrderedDict[str, tuple[float, dict[str, Any]]]:
    jobs: OrderedDict[str, tuple[float, dict[str, Any]]] = state.extras.setdefault(
        _JOBS, OrderedDict()
    )
    cutoff = state.clock.now() - JOB_LIFETIME
    while jobs and (len(jobs) > JOBS_KEPT or next(iter(jobs.values()))[0] < cutoff):
        jobs.popitem(last=False)
    return jobs


def _remember(state: AppState, job: dict[str, Any]) -> dict[str, Any]:
    jobs = _jobs(state)
    jobs[job["id"]] = (state.clock.now(), job)
    if len(jobs) > JOBS_KEPT:
        jobs.popitem(last=False)
    return job
