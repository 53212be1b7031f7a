"""The codes and documentation pages the behaviour rows cite."""

from __future__ import annotations

VALIDATION = "ValidationException"
RESOURCE_NOT_FOUND = "ResourceNotFound"

API_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"
# The messages SageMaker really answers, as two AWS-maintained controllers match them:
ACK_GENERATOR = "https://github.com/aws-controllers-k8s/sagemaker-controller/blob/main/generator.yaml"
K8S_OPERATOR = (
    "https://github.com/aws/amazon-sagemaker-operator-for-k8s/blob/master/"
    "controllers/sdkutil/clientwrapper/sagemaker_client.go"
)
