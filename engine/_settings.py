"""runjournal's own settings, read through dlt's config providers as dlt reads its own."""

from __future__ import annotations

from dlt.common.configuration import inject_section, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext


def resolved_for(spec: BaseConfiguration, pipeline_name: str) -> BaseConfiguration:
    """``spec`` resolved for a pipeline: its own section (``<pipeline>.runjournal...``) first, then the global one."""
    context = ConfigSectionContext(pipeline_name=pipeline_name, sections=(),
                                   merge_style=ConfigSectionContext.prefer_existing)
    with inject_section(context):
        return resolve_configuration(spec)
