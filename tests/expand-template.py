"""template.yaml with its AWS::LanguageExtensions loops stamped out, as JSON on standard output: the template
checkov reads (it does not expand Fn::ForEach itself, so it would see none of the tasks' resources). The SAM
CLI's own expansion, the one `sam build` and `sam deploy` use (samconfig.toml: language_extensions)."""

import json
import sys

from samcli.lib.cfn_language_extensions.sam_integration import process_template_for_sam_cli
from samcli.yamlhelper import yaml_parse

with open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml", encoding="utf-8") as f:
    expanded = process_template_for_sam_cli(yaml_parse(f.read()))
# Only the loops: the SAM transform (and CloudFormation) come after, as on deploy.
expanded["Transform"] = [t for t in expanded.get("Transform", []) if t != "AWS::LanguageExtensions"]
json.dump(expanded, sys.stdout, indent=1, default=str)
