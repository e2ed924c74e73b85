# mxtransfer AWS side: included by the main Makefile (`include infra/infra.mk`).
#
#   make install ecr-stack                 # ECR repository for the worker image (once per account/region)
#   make publish                           # docker build worker/Dockerfile, push <repo>:<git sha>
#   make driver-zip DRIVER_CODE_BUCKET=b   # only for the s3-batch-operations backend: upload the driver zip
#   make install subscriber-stack          # or: make install publisherhelper-stack
#   make outputs                           # write the stacks' outputs to dags/config/mxtransfer_stacks.json
#
# Parameters are asked for on the terminal; or give them as environment variables named like the template
# parameters (SourceLocations=... DestinationBucket=...), or in PARAMS_FILE (Key=Value lines or JSON).
# Every AWS call is printed before it runs; DRY_RUN=1 prints the deploy command without running it.
# Credentials and region come from the usual AWS CLI environment (AWS_PROFILE, AWS_REGION, ...).

AWS ?= aws
DOCKER ?= docker
INFRA_PY ?= $(if $(PY),$(PY),python3)
INFRA_TEMPLATES := infra/templates
INFRA_BUILD := build/infra
STACK_PREFIX ?= mxtransfer
ECR_STACK ?= $(STACK_PREFIX)-ecr
PUBLISHER_STACK ?= $(STACK_PREFIX)-publisher
SUBSCRIBER_STACK ?= $(STACK_PREFIX)-subscriber
PARAMS_FILE ?=
DRY_RUN ?=
DAG_CONFIG ?= dags/config/mxtransfer_stacks.json
IMAGE_TAG ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null)
DOCKER_PLATFORM ?= linux/amd64
DOCKER_CONTEXT ?= worker
DRIVER_CODE_BUCKET ?=

# `make install X`: install only checks that X names a stack; X does the work (so `make X` works alone too).
INFRA_STACK_GOALS := ecr-stack publisherhelper-stack subscriber-stack

.PHONY: install ecr-stack publisherhelper-stack subscriber-stack publish outputs driver-zip infra-lint

install:
	@test -n "$(filter $(INFRA_STACK_GOALS),$(MAKECMDGOALS))" || \
	  { echo "usage: make install ecr-stack | publisherhelper-stack | subscriber-stack" >&2; exit 2; }

# $(call deploy_stack,stack name,template,--set arguments for stack_params.py)
define deploy_stack
	@mkdir -p $(INFRA_BUILD)
	@echo "+ $(AWS) cloudformation describe-stacks --stack-name $(ECR_STACK) (image repository, if deployed)"
	@repo=$$($(AWS) cloudformation describe-stacks --stack-name $(ECR_STACK) \
	    --query "Stacks[0].Outputs[?OutputKey=='RepositoryUri'].OutputValue" --output text 2>/dev/null || true); \
	  image_default=""; \
	  if [ -n "$$repo" ] && [ "$$repo" != "None" ]; then image_default="Image=$$repo:$(IMAGE_TAG)"; fi; \
	  $(INFRA_PY) infra/stack_params.py params --template $(2) --out $(INFRA_BUILD)/$(1).params \
	    $(if $(PARAMS_FILE),--params-file $(PARAMS_FILE)) $(3) --default "$$image_default"
	@echo "Parameters (kept in $(INFRA_BUILD)/$(1).params, reusable as PARAMS_FILE):"
	@sed 's/^/    /' $(INFRA_BUILD)/$(1).params
	@echo "+ $(AWS) cloudformation deploy --stack-name $(1) --template-file $(2) --capabilities CAPABILITY_IAM" \
	  "--no-fail-on-empty-changeset --tags Project=mxtransfer --parameter-overrides" $$(cat $(INFRA_BUILD)/$(1).params)
	@if [ -z "$(DRY_RUN)" ]; then \
	  $(AWS) cloudformation deploy --stack-name $(1) --template-file $(2) --capabilities CAPABILITY_IAM \
	    --no-fail-on-empty-changeset --tags Project=mxtransfer --parameter-overrides $$(cat $(INFRA_BUILD)/$(1).params) && \
	  echo "+ $(AWS) cloudformation describe-stacks --stack-name $(1) --query Stacks[0].Outputs --output table" && \
	  $(AWS) cloudformation describe-stacks --stack-name $(1) --query "Stacks[0].Outputs" --output table; \
	fi
endef

ecr-stack:
	$(call deploy_stack,$(ECR_STACK),$(INFRA_TEMPLATES)/ecr.yaml,)

publisherhelper-stack:
	$(call deploy_stack,$(PUBLISHER_STACK),$(INFRA_TEMPLATES)/transfer-stack.yaml,--set Side=publisher)

subscriber-stack:
	$(call deploy_stack,$(SUBSCRIBER_STACK),$(INFRA_TEMPLATES)/transfer-stack.yaml,--set Side=subscriber)

# Build worker/Dockerfile and push it as <RepositoryUri>:$(IMAGE_TAG) (tags are immutable in the repository).
publish:
	@repo=$$($(AWS) cloudformation describe-stacks --stack-name $(ECR_STACK) \
	    --query "Stacks[0].Outputs[?OutputKey=='RepositoryUri'].OutputValue" --output text) && \
	  test -n "$$repo" && test "$$repo" != "None" || { echo "no $(ECR_STACK) stack: run make install ecr-stack" >&2; exit 1; }; \
	  registry=$${repo%%/*}; region=$$(echo $$registry | cut -d. -f4); \
	  set -x; \
	  $(AWS) ecr get-login-password --region $$region | $(DOCKER) login --username AWS --password-stdin $$registry && \
	  $(DOCKER) build --platform $(DOCKER_PLATFORM) -f worker/Dockerfile -t $$repo:$(IMAGE_TAG) $(DOCKER_CONTEXT) && \
	  $(DOCKER) push $$repo:$(IMAGE_TAG) && \
	  { set +x; echo "Pushed $$repo:$(IMAGE_TAG); make install offers it as the Image default."; }

# Zip worker/mxtransfer_worker with its pinned dependencies (worker/requirements.txt, hash-checked; awscrt's wheel
# is abi3, for every runtime the template allows, on the Lambda's default x86_64) for the driver Lambda, and
# upload it under a content-addressed key.
DRIVER_WHEELS := $(INFRA_BUILD)/driver-wheels
driver-zip:
	@test -n "$(DRIVER_CODE_BUCKET)" || { echo "set DRIVER_CODE_BUCKET=<bucket in this region>" >&2; exit 2; }
	rm -rf $(DRIVER_WHEELS)
	$(INFRA_PY) -m pip download --quiet --disable-pip-version-check --require-hashes --no-deps \
	  --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp \
	  -r worker/requirements.txt -d $(DRIVER_WHEELS)
	@set -e; wheels=$$(for wheel in $(DRIVER_WHEELS)/*.whl; do printf -- '--wheel %s ' "$$wheel"; done); \
	  out=$$($(INFRA_PY) infra/stack_params.py driver-zip --out-dir $(INFRA_BUILD) $$wheels); \
	  zip=$${out% *}; key=$${out#* }; \
	  echo "+ $(AWS) s3 cp $$zip s3://$(DRIVER_CODE_BUCKET)/$$key"; \
	  $(AWS) s3 cp $$zip s3://$(DRIVER_CODE_BUCKET)/$$key; \
	  echo "Deploy with: EnableS3BatchOperations=true DriverCodeBucket=$(DRIVER_CODE_BUCKET) DriverCodeKey=$$key"

# Stack outputs -> DAG config. Stacks that are not deployed are skipped with a note.
outputs:
	@mkdir -p $(INFRA_BUILD)
	@set -e; files=""; \
	  for stack in $(PUBLISHER_STACK) $(SUBSCRIBER_STACK); do \
	    echo "+ $(AWS) cloudformation describe-stacks --stack-name $$stack --output json"; \
	    if $(AWS) cloudformation describe-stacks --stack-name $$stack --output json > $(INFRA_BUILD)/$$stack.json; then \
	      files="$$files $(INFRA_BUILD)/$$stack.json"; \
	    else echo "    ($$stack not deployed, skipped)"; fi; \
	  done; \
	  test -n "$$files" || { echo "no transfer stack deployed" >&2; exit 1; }; \
	  $(INFRA_PY) infra/stack_outputs.py --out $(DAG_CONFIG) $$files

# The same checks `make test` runs in tests/infra, without the moto deployment.
infra-lint:
	$(INFRA_PY) infra/policy_check.py $(INFRA_TEMPLATES)/*.yaml
	$(INFRA_PY) -c "import sys, cfnlint.runner; sys.argv[0] = 'cfn-lint'; sys.exit(cfnlint.runner.main())" $(INFRA_TEMPLATES)/*.yaml
