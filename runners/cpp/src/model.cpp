#include "model.hpp"

#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

namespace greenrt {
namespace {

const char* kMetadataKey = "greenrt.json";  // models/torch_artifacts.py ARTIFACT_METADATA_KEY

void read_metadata(Model& model, const std::string& text, const std::string& path) {
  if (text.empty()) throw std::runtime_error(path + " carries no " + kMetadataKey + ": not a greenrt export");
  auto meta = nlohmann::json::parse(text);
  model.model_name = meta.at("model").get<std::string>();
  model.input_names = meta.at("inputs").get<std::vector<std::string>>();
  model.output_names = meta.at("outputs").get<std::vector<std::string>>();
}

class TorchScriptModel : public Model {
 public:
  explicit TorchScriptModel(const std::string& path) {
    torch::jit::ExtraFilesMap extra{{kMetadataKey, ""}};
    module_ = torch::jit::load(path, torch::kCPU, extra);
    module_.eval();
    read_metadata(*this, extra[kMetadataKey], path);
  }

  std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& inputs) override {
    std::vector<torch::jit::IValue> args(inputs.begin(), inputs.end());
    auto out = module_.forward(args);
    std::vector<torch::Tensor> tensors;
    if (out.isTuple()) {
      for (const auto& v : out.toTupleRef().elements()) tensors.push_back(v.toTensor());
    } else if (out.isTensorList()) {
      for (const auto& t : out.toTensorVector()) tensors.push_back(t);
    } else {
      tensors.push_back(out.toTensor());
    }
    return tensors;
  }

 private:
  torch::jit::Module module_;
};

class AotiModel : public Model {
 public:
  explicit AotiModel(const std::string& path) : loader_(path) {
    auto meta = loader_.get_metadata();
    auto found = meta.find(kMetadataKey);
    read_metadata(*this, found == meta.end() ? "" : found->second, path);
  }

  std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& inputs) override { return loader_.run(inputs); }

 private:
  torch::inductor::AOTIModelPackageLoader loader_;
};

}  // namespace

std::unique_ptr<Model> load_model(const std::string& format, const std::string& path) {
  if (format == "torchscript") return std::make_unique<TorchScriptModel>(path);
  if (format == "aoti") return std::make_unique<AotiModel>(path);
  throw std::invalid_argument("no loader for format " + format);
}

}  // namespace greenrt
