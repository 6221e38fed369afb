using CoeffTune.Adapters;
using CoeffTune.Methods;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Adapters;

public class AdapterFileTests : IDisposable
{
    private readonly TempDir temp = new();

    private string dir => temp.Path;

    public void Dispose() => temp.Dispose();

    private PeftModel Trained(string recipe, int seed = 0)
    {
        var model = TinyModels.Bert(seed);
        var peft = PeftModel.Wrap(model, recipe);
        torch.manual_seed(9);
        using (no_grad())
            foreach (var name in peft.TrainableNames) { var t = model.state_dict()[name]; t.add_(randn_like(t) * 0.1); }
        return peft;
    }

    [Theory]
    [InlineData("coeff+lora")]
    [InlineData("coeff+dora")]
    [InlineData("coeff+ssf")]
    [InlineData("bitfit")]
    public void Saved_then_loaded_into_a_fresh_model_gives_bit_identical_outputs(string recipe)
    {
        using var scope = NewDisposeScope();
        var peft = Trained(recipe);
        var batch = TinyModels.TextBatch();
        var expected = peft.Classifier.forward(batch);
        AdapterFile.Save(peft, dir, "tiny-bert", new[] { "a", "b", "c" });

        var fresh = TinyModels.Bert();
        var loaded = AdapterFile.Load(fresh, dir);
        fresh.eval();
        Assert.Equal(0.0, MaxAbsDiff(expected, fresh.forward(batch)));
        Assert.Equal(peft.Recipe, loaded.Recipe);
        Assert.Equal(new[] { "a", "b", "c" }, AdapterFile.ReadInfo(dir).Labels);

        // Only trainable tensors: file size is their bytes plus a small header.
        long bytes = peft.Report().Total * 4;
        long size = new FileInfo(Path.Combine(dir, AdapterFile.WeightsName)).Length;
        Assert.InRange(size, bytes, bytes + 16_384);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void Lora_keys_follow_the_hugging_face_layout()
    {
        using var scope = NewDisposeScope();
        AdapterFile.Save(Trained("coeff+lora"), dir);
        var keys = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(dir, AdapterFile.WeightsName)).Keys.ToHashSet();
        Assert.Contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight", keys);
        Assert.Contains("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight", keys);
        Assert.Contains("base_model.model.bert.encoder.layer.0.attention.self.mixing.alpha", keys);
        Assert.Contains("base_model.model.classifier.weight", keys);
        Assert.Equal(2 * 2 * 2 + 2 + 2, keys.Count);
        var config = File.ReadAllText(Path.Combine(dir, AdapterFile.ConfigName));
        Assert.Contains("\"peft_type\": \"LORA\"", config);
        Assert.Contains("\"format_version\": 2", config);
    }

    [Fact]
    public void A_different_base_model_is_refused_with_both_identities()
    {
        using var scope = NewDisposeScope();
        var peft = Trained("coeff+lora");
        AdapterFile.Save(peft, dir);
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(seed: 1), dir));
        Assert.Contains(peft.BaseIdentity, e.Message);
        Assert.Contains("adapter_config.json", e.Message);
    }

    [Fact]
    public void The_pooling_is_recorded_and_a_model_that_pools_otherwise_is_refused()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        var cls = new CoeffTune.Models.BertClassifier(TinyModels.BertShape with { Pooling = CoeffTune.Models.Pooling.Cls });
        AdapterFile.Save(PeftModel.Wrap(cls, "coeff"), dir);
        Assert.Equal("cls", AdapterFile.ReadInfo(dir).Pooling);
        // The same weights (same fingerprint), mean-pooled: the head would sit on another vector.
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(seed: 0), dir));
        Assert.Contains("cls pooling", e.Message);
        Assert.Contains("mean", e.Message);
        torch.manual_seed(0);
        var again = new CoeffTune.Models.BertClassifier(TinyModels.BertShape with { Pooling = CoeffTune.Models.Pooling.Cls });
        Assert.Equal("coeff", AdapterFile.Load(again, dir).Recipe);
    }

    [Fact]
    public void A_shape_mismatch_names_the_tensor_and_both_shapes()
    {
        using var scope = NewDisposeScope();
        AdapterFile.Save(Trained("coeff+lora"), dir);
        // Same backbone, a head with another number of classes.
        torch.manual_seed(0);
        var other = new CoeffTune.Models.BertClassifier(TinyModels.BertShape with { Classes = 5 });
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(other, dir));
        Assert.Contains("'base_model.model.classifier.weight'", e.Message);
        Assert.Contains("[3, 32]", e.Message);
        Assert.Contains("[5, 32]", e.Message);
    }

    [Fact]
    public void A_truncated_adapter_file_names_the_file()
    {
        using var scope = NewDisposeScope();
        AdapterFile.Save(Trained("coeff+lora"), dir);
        var path = Path.Combine(dir, AdapterFile.WeightsName);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.ThrowsAny<Exception>(() => AdapterFile.Load(TinyModels.Bert(), dir));
        Assert.IsType<InvalidDataException>(e);
        Assert.Contains(AdapterFile.WeightsName, e.Message);
    }

    [Fact]
    public void A_format_version_1_folder_with_keys_under_the_librarys_own_module_paths_still_loads()
    {
        using var scope = NewDisposeScope();
        var peft = Trained("coeff+lora");
        var batch = TinyModels.TextBatch();
        var expected = peft.Classifier.forward(batch);
        AdapterFile.Save(peft, dir, "tiny-bert", new[] { "a", "b", "c" });

        // Version 1 wrote each tensor as base_model.model. + the module path of the model as built here.
        var state = peft.Classifier.state_dict();
        var v1 = peft.TrainableNames.ToDictionary(n => "base_model.model." + n, n => state[n].detach().clone());
        Assert.Contains("base_model.model.layers.0.attention.query.lora_A.weight", v1.Keys);
        // SaveStateDict writes over an existing file without truncating it.
        File.Delete(Path.Combine(dir, AdapterFile.WeightsName));
        TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(dir, AdapterFile.WeightsName), v1);
        var configPath = Path.Combine(dir, AdapterFile.ConfigName);
        File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"format_version\": 2", "\"format_version\": 1"));

        var fresh = TinyModels.Bert();
        AdapterFile.Load(fresh, dir);
        fresh.eval();
        Assert.Equal(0.0, MaxAbsDiff(expected, fresh.forward(batch)));
    }

    [Fact]
    public void A_newer_format_version_is_refused()
    {
        using var scope = NewDisposeScope();
        AdapterFile.Save(Trained("coeff"), dir);
        var path = Path.Combine(dir, AdapterFile.ConfigName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"format_version\": 2", "\"format_version\": 99"));
        var e = Assert.Throws<InvalidDataException>(() => AdapterFile.Load(TinyModels.Bert(), dir));
        Assert.Contains("format_version 99", e.Message);
    }
}
