using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Adapters;

/// <summary>
/// Adapter folders as Hugging Face PEFT writes them, built here by hand from PEFT's documented format (keys
/// "base_model.model." + the transformers module path, adapter name removed; adapter_config.json with PEFT's
/// LoraConfig fields only), with the safetensors bytes written by hand too, so no code of the library is on the
/// writing side. Each is loaded and checked against a reference computed without the adapter machinery.
/// </summary>
public sealed class PeftInteropTests : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    /// <summary>PEFT's LoraConfig fields, as save_pretrained writes them for a sequence classifier.</summary>
    internal static JsonObject PeftLoraConfig(int r, double alpha, string[] targets, string[] modulesToSave, string? taskType, bool dora = false) => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = taskType, ["base_model_name_or_path"] = "hand-built", ["revision"] = null,
        ["inference_mode"] = true, ["r"] = r, ["lora_alpha"] = alpha, ["lora_dropout"] = 0.1,
        ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t!).ToArray()), ["bias"] = "none",
        ["fan_in_fan_out"] = false, ["use_rslora"] = false, ["use_dora"] = dora, ["init_lora_weights"] = true,
        ["modules_to_save"] = new JsonArray(modulesToSave.Select(t => (JsonNode)t!).ToArray()),
        ["layers_to_transform"] = null, ["layers_pattern"] = null, ["rank_pattern"] = new JsonObject(), ["alpha_pattern"] = new JsonObject(),
    };

    /// <summary>A safetensors file written byte by byte: 8-byte header length, JSON header, little-endian F32 data.</summary>
    internal static void WriteSafetensors(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var header = new JsonObject();
        var data = new List<byte>();
        foreach (var (name, t) in tensors)
        {
            var values = t.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
            long begin = data.Count;
            foreach (var v in values)
            {
                var b = new byte[4];
                BinaryPrimitives.WriteSingleLittleEndian(b, v);
                data.AddRange(b);
            }
            header[name] = new JsonObject
            {
                ["dtype"] = "F32", ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d!).ToArray()),
                ["data_offsets"] = new JsonArray(begin, (long)data.Count),
            };
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        using var f = File.Create(path);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        f.Write(len);
        f.Write(json);
        for (int i = json.Length; i < padded; i++) f.WriteByte((byte)' ');
        f.Write(data.ToArray());
    }

    private string Folder(string name, JsonObject config, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var dir = Path.Combine(temp.Path, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, AdapterFile.ConfigName), config.ToJsonString());
        WriteSafetensors(Path.Combine(dir, AdapterFile.WeightsName), tensors);
        return dir;
    }

    [Fact]
    public void A_hand_built_peft_lora_folder_loads_with_the_outputs_of_our_own_save_and_of_a_hand_merge()
    {
        using var scope = NewDisposeScope();
        const int r = 2; const double alpha = 4;
        torch.manual_seed(5);
        var tensors = new Dictionary<string, Tensor>();
        var factors = new Dictionary<string, (Tensor A, Tensor B)>();
        for (int i = 0; i < 2; i++)
            foreach (var proj in new[] { "query", "value" })
            {
                var a = randn(r, 32) * 0.3; var b = randn(32, r) * 0.3;
                factors[$"layers.{i}.attention.{proj}"] = (a, b);
                tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}.lora_A.weight"] = a;
                tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}.lora_B.weight"] = b;
            }
        var headW = randn(3, 32) * 0.2; var headB = randn(3) * 0.2;
        tensors["base_model.model.classifier.weight"] = headW;
        tensors["base_model.model.classifier.bias"] = headB;
        var dir = Folder("peft", PeftLoraConfig(r, alpha, ["query", "value"], ["classifier"], "SEQ_CLS"), tensors);

        var info = AdapterFile.ReadInfo(dir);
        Assert.True(info.PeftOnly);
        Assert.Equal("lora", info.Recipe);
        Assert.Equal("bert", info.Architecture);
        Assert.Null(info.BaseIdentity);
        Assert.Equal(3, info.Classes);

        var batch = TinyModels.TextBatch();
        var loaded = AdapterFile.Load(TinyModels.Bert(), dir);
        Assert.False(loaded.Model.training);
        var fromPeft = loaded.Classifier.forward(batch);

        // Our own save of the same weights, set through the method-state API.
        var ours = PeftModel.Wrap(TinyModels.Bert(), new LoraConfig(rank: r, alpha: alpha));
        var lora = ours.Method<LoraMethod>();
        foreach (var (path, (a, b)) in factors) lora.SetFactors(path, a, b);
        using (no_grad()) { ours.Classifier.Head.weight!.copy_(headW); ours.Classifier.Head.bias!.copy_(headB); }
        var ownDir = Path.Combine(temp.Path, "own");
        AdapterFile.Save(ours, ownDir, "tiny");
        var fromOwn = AdapterFile.Load(TinyModels.Bert(), ownDir).Classifier.forward(batch);
        Assert.Equal(0, MaxAbsDiff(fromPeft, fromOwn));

        // Independent: W += (alpha / r) B A by hand on a plain model, no adapter at all.
        var plain = TinyModels.Bert();
        var state = plain.state_dict();
        using (no_grad())
        {
            foreach (var (path, (a, b)) in factors) state[path + ".weight"].add_(matmul(b, a) * (alpha / r));
            plain.classifier.weight!.copy_(headW);
            plain.classifier.bias!.copy_(headB);
        }
        Assert.InRange(MaxAbsDiff(fromPeft, plain.forward(batch)), 0, 1e-5);
    }

    [Fact]
    public void Coeff_tensors_beside_a_peft_lora_load_as_coeff_plus_lora()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(6);
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < 2; i++)
        {
            foreach (var proj in new[] { "query", "value" })
            {
                tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}.lora_A.weight"] = randn(2, 32) * 0.3;
                tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}.lora_B.weight"] = randn(32, 2) * 0.3;
            }
            tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.mixing.alpha"] = randn(4, 4) * 0.2;
        }
        tensors["base_model.model.classifier.weight"] = randn(3, 32) * 0.2;
        tensors["base_model.model.classifier.bias"] = zeros(3);
        var dir = Folder("peft-coeff", PeftLoraConfig(2, 4, ["query", "value"], ["classifier"], "SEQ_CLS"), tensors);

        var peft = AdapterFile.Load(TinyModels.Bert(), dir);
        Assert.Equal("coeff+lora", peft.Recipe);
        var coeff = peft.Method<CoeffMethod>();
        Assert.Equal(new[] { "layers.0.attention", "layers.1.attention" }, coeff.Targets);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(0, MaxAbsDiff(coeff.GetAlpha(i), tensors[$"base_model.model.bert.encoder.layer.{i}.attention.self.mixing.alpha"]));
            // Residual parameterisation: alpha' = I + alpha.
            Assert.InRange(MaxAbsDiff(coeff.Layer(i).MixingMatrix(), eye(4) + coeff.GetAlpha(i)), 0, 1e-7);
        }
    }

    [Fact]
    public void A_peft_lora_on_timms_fused_qkv_is_split_onto_query_key_and_value()
    {
        using var scope = NewDisposeScope();
        const int r = 3; const double alpha = 6;
        torch.manual_seed(7);
        var tensors = new Dictionary<string, Tensor>();
        var fused = new Dictionary<int, (Tensor A, Tensor B)>();
        for (int i = 0; i < 2; i++)
        {
            var a = randn(r, 32) * 0.3; var b = randn(96, r) * 0.3;
            fused[i] = (a, b);
            tensors[$"base_model.model.blocks.{i}.attn.qkv.lora_A.weight"] = a;
            tensors[$"base_model.model.blocks.{i}.attn.qkv.lora_B.weight"] = b;
        }
        var headW = randn(3, 32) * 0.2; var headB = randn(3) * 0.2;
        tensors["base_model.model.head.weight"] = headW;
        tensors["base_model.model.head.bias"] = headB;
        var dir = Folder("timm", PeftLoraConfig(r, alpha, ["qkv"], ["head"], null), tensors);

        var info = AdapterFile.ReadInfo(dir);
        Assert.Equal("vit", info.Architecture);
        var peft = AdapterFile.Load(TinyModels.Vit(), dir);
        Assert.Equal(6, peft.Method<LoraMethod>().Layers.Count);
        var batch = TinyModels.ImageBatch();
        var actual = peft.Classifier.forward(batch);

        // By hand: the fused update's rows 0-31 are the query's, 32-63 the key's, 64-95 the value's.
        var plain = TinyModels.Vit();
        var state = plain.state_dict();
        using (no_grad())
        {
            foreach (var (i, (a, b)) in fused)
            {
                var delta = matmul(b, a) * (alpha / r);
                string[] parts = ["query", "key", "value"];
                for (int j = 0; j < 3; j++) state[$"blocks.{i}.attn.{parts[j]}.weight"].add_(delta[TensorIndex.Slice(32 * j, 32 * (j + 1))]);
            }
            plain.head.weight!.copy_(headW);
            plain.head.bias!.copy_(headB);
        }
        Assert.InRange(MaxAbsDiff(actual, plain.forward(batch)), 0, 1e-5);
    }

    [Fact]
    public void A_peft_dora_folder_loads_the_magnitude_vector()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(8);
        var source = PeftModel.Wrap(TinyModels.Bert(), "dora");
        using (no_grad())
            foreach (var name in source.TrainableNames) { var t = source.Model.state_dict()[name]; t.add_(randn_like(t) * 0.1); }
        var state = source.Model.state_dict();
        var tensors = source.TrainableNames.ToDictionary(n => AdapterFile.KeyFor("bert", n), n => state[n]);
        Assert.Contains("base_model.model.bert.encoder.layer.1.attention.self.value.lora_magnitude_vector", tensors.Keys);
        var dir = Folder("dora", PeftLoraConfig(8, 16, ["query", "value"], ["classifier"], "SEQ_CLS", dora: true), tensors);

        var loaded = AdapterFile.Load(TinyModels.Bert(), dir);
        Assert.Equal("dora", loaded.Recipe);
        var batch = TinyModels.TextBatch();
        Assert.Equal(0, MaxAbsDiff(source.Classifier.forward(batch), loaded.Classifier.forward(batch)));
    }

    [Theory]
    [InlineData("peft_type", "\"IA3\"", "peft_type 'IA3'")]
    [InlineData("use_rslora", "true", "'use_rslora'")]
    [InlineData("rank_pattern", "{\"query\": 4}", "'rank_pattern'")]
    [InlineData("bias", "\"all\"", "'bias'")]
    public void Peft_settings_that_would_change_the_computation_are_refused_naming_the_key(string key, string value, string expected)
    {
        using var scope = NewDisposeScope();
        var config = PeftLoraConfig(2, 4, ["query"], ["classifier"], "SEQ_CLS");
        config[key] = JsonNode.Parse(value);
        var dir = Folder("bad", config, new Dictionary<string, Tensor>
        {
            ["base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"] = zeros(2, 32),
            ["base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight"] = zeros(32, 2),
        });
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(), dir));
        Assert.Contains(Path.Combine(dir, AdapterFile.ConfigName), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_tensor_in_no_known_layout_is_named()
    {
        using var scope = NewDisposeScope();
        var dir = Folder("unknown", PeftLoraConfig(2, 4, ["q_proj"], ["classifier"], "SEQ_CLS"), new Dictionary<string, Tensor>
        {
            ["base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"] = zeros(2, 32),
            ["base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"] = zeros(2, 32),
        });
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(), dir));
        Assert.Contains("base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
    }
}
