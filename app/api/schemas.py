import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.fields import JsonObject, Moment, text
from app.models import RESULT_STATUSES, RUN_STATUSES

UTC = dt.UTC


class ResultInSchema(Schema):
    name = text(1, 200, required=True)
    status = fields.String(required=True, validate=validate.OneOf(RESULT_STATUSES))
    duration_ms = fields.Float(allow_none=True, validate=validate.Range(min=0))
    message = text(maximum=10_000, allow_none=True)
    details = JsonObject(allow_none=True, metadata={"description": "Free-form JSON object."})


class RunInSchema(Schema):
    suite = text(1, 100, required=True)
    environment = text(1, 100, allow_none=True)
    git_ref = text(1, 100, allow_none=True)
    started_at = Moment(
        metadata={"description": "Defaults to now. Within the years 1 to 9999 in UTC."}
    )
    finished_at = Moment(
        allow_none=True,
        metadata={
            "description": "Not before started_at (else 422). Within the years 1 to 9999 in UTC."
        },
    )
    results = fields.List(
        fields.Nested(ResultInSchema), required=True, validate=validate.Length(min=1, max=5000)
    )

    @validates_schema
    def _finished_after_started(self, data, **kwargs):
        started, finished = data.get("started_at"), data.get("finished_at")
        if started and finished and finished < started:
            raise ValidationError("finished_at is before started_at.", "finished_at")


class ResultSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    duration_ms = fields.Float(allow_none=True)
    message = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)


class RunSchema(Schema):
    id = fields.Integer()
    suite = fields.String()
    environment = fields.String(allow_none=True)
    git_ref = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "failed if any check failed or errored."})
    total = fields.Integer()
    passed = fields.Integer()
    failed = fields.Integer()
    warned = fields.Integer()
    errored = fields.Integer()
    pass_rate = fields.Float(allow_none=True)
    started_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class RunDetailSchema(RunSchema):
    results = fields.List(fields.Nested(ResultSchema))


class RunListArgsSchema(Schema):
    suite = text(1, 100)
    status = fields.String(validate=validate.OneOf(RUN_STATUSES))
    since = Moment(clamp=True, metadata={"description": "started_at >="})
    until = Moment(clamp=True, metadata={"description": "started_at <"})
    # Past the last page answers an empty page; past this one, 422.
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class RunPageSchema(Schema):
    items = fields.List(fields.Nested(RunSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class SummaryArgsSchema(Schema):
    window_hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=24 * 90))


class SuiteSummarySchema(Schema):
    suite = fields.String()
    runs = fields.Integer()
    runs_failed = fields.Integer()
    checks = fields.Integer()
    checks_passed = fields.Integer()
    pass_rate = fields.Float(allow_none=True, metadata={"description": "checks_passed / checks"})


class SummarySchema(Schema):
    window_hours = fields.Integer()
    since = fields.AwareDateTime()
    generated_at = fields.AwareDateTime()
    suites = fields.List(fields.Nested(SuiteSummarySchema))


class SubscriptionInSchema(Schema):
    suite = text(1, 100, required=True, metadata={"description": 'A suite name, or "*" for all.'})


class SubscriptionSchema(Schema):
    id = fields.Integer()
    suite = fields.String()
    is_active = fields.Boolean()
    created_at = fields.AwareDateTime()
