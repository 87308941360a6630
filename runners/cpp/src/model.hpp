// The saved torch model (models/torch_artifacts.py), loaded from C++: TorchScript by torch::jit::load, AOTInductor
// by torch::inductor::AOTIModelPackageLoader. Both take the inputs positionally in the registry's order and return
// the outputs in the registry's order; the names travel in the artifact (metadata key "greenrt.json").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace greenrt {

class Model {
 public:
  virtual ~Model() = default;
  virtual std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& inputs) = 0;
  std::vector<std::string> input_names, output_names;
  std::string model_name;  // the registry's model the artifact was exported from
};

// The artifact at `path` in `format` ("torchscript" | "aoti"); throws what the loader throws.
std::unique_ptr<Model> load_model(const std::string& format, const std::string& path);

}  // namespace greenrt
