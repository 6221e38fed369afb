using CoeffTune.Adapters;
using CoeffTune.Attention;
using CoeffTune.Checkpoints;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using CoeffTune.Tests.Adapters;
using CoeffTune.Tests.Cli;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

/// <summary>The frame around the methods: any module tree, the model's mode, method state, and no guessed head counts.</summary>
public sealed class FrameTests : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Wrapping_a_model_in_eval_mode_leaves_every_added_module_in_eval_mode()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        Assert.False(model.training);
        var peft = PeftModel.Wrap(model, new CoeffConfig(dropout: 0.5), new LoraConfig(dropout: 0.5));
        Assert.All(model.modules(), m => Assert.False(m.training));
        // Dropout on alpha and on LoRA's input would make two passes differ.
        var batch = TinyModels.TextBatch();
        Assert.Equal(0, MaxAbsDiff(peft.Classifier.forward(batch), peft.Classifier.forward(batch)));

        var training = TinyModels.Bert(1);
        training.train();
        PeftModel.Wrap(training, "coeff+lora");
        Assert.All(training.modules(), m => Assert.True(m.training));
    }

    /// <summary>A module tree that is not a classifier: two attention layers, one self and one cross, and a Linear.</summary>
    private sealed class TwoAttentions : nn.Module
    {
        public readonly MultiHeadAttention self_attn = new(16, 4);
        public readonly MultiHeadAttention cross_attn = new(16, 4, contextDim: 8);
        public readonly TorchSharp.Modules.Linear proj = nn.Linear(16, 16);

        public TwoAttentions() : base(nameof(TwoAttentions)) => RegisterComponents();

        public Tensor forward(Tensor x, Tensor context) => proj.call(cross_attn.forward(self_attn.forward(x), context));
    }

    [Fact]
    public void Methods_attach_to_any_module_tree_and_coeff_targets_self_or_cross_attention()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var net = new TwoAttentions();
        var peft = PeftModel.Wrap(net, "toy", Array.Empty<string>(), new CoeffConfig(targetModules: ["cross_attn"]), new LoraConfig(targetModules: ["proj"]));
        Assert.Equal(new[] { "cross_attn" }, peft.Method<CoeffMethod>().Targets);
        Assert.Empty(net.self_attn.MapTransforms);
        Assert.IsType<CoeffMixing>(Assert.Single(net.cross_attn.MapTransforms));
        Assert.Equal(new[] { "proj" }, peft.Method<LoraMethod>().Targets);
        Assert.Equal(16 + 8 * 16 * 2, peft.Report().Total);
        // A pattern that picks something other than an attention layer is refused, naming it.
        var e = Assert.Throws<ArgumentException>(() => PeftModel.Wrap(new TwoAttentions(), "toy", Array.Empty<string>(), new CoeffConfig(targetModules: ["proj"])));
        Assert.Contains("'proj'", e.Message);
        Assert.Contains(nameof(MultiHeadAttention), e.Message);
    }

    [Fact]
    public void Alpha_set_from_weights_written_outside_the_library_is_what_the_layer_mixes_with()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var written = new Dictionary<string, Tensor> { ["layer0"] = randn(4, 4) * 0.5, ["layer1"] = randn(4, 4) * 0.5 };
        var path = Path.Combine(temp.Path, "alpha.safetensors");
        PeftInteropTests.WriteSafetensors(path, written);
        // Read back by TorchSharp.PyBridge, not by this library's reader.
        var read = TorchSharp.PyBridge.Safetensors.LoadStateDict(path);

        var peft = PeftModel.Wrap(TinyModels.Bert(), "coeff");
        var coeff = peft.Find<CoeffMethod>()!;
        Assert.Null(peft.Find<LoraMethod>());
        coeff.SetAlpha(0, read["layer0"]);
        coeff.SetAlpha("layers.1.attention", read["layer1"]);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(0, MaxAbsDiff(coeff.GetAlpha(i), written[$"layer{i}"]));
            Assert.InRange(MaxAbsDiff(coeff.Layer(i).MixingMatrix(), eye(4) + written[$"layer{i}"]), 0, 1e-7);
        }
        Assert.Throws<ArgumentException>(() => coeff.SetAlpha(0, zeros(3, 3)));
        Assert.Throws<KeyNotFoundException>(() => coeff.SetAlpha("layers.9.attention", zeros(4, 4)));
        Assert.Throws<InvalidOperationException>(() => peft.Method<LoraMethod>());
    }

    [Fact]
    public void A_checkpoint_without_a_head_count_is_refused_and_loads_when_given_one()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        // Width 48 with 4 heads: a guess of 64-wide heads would give 1 head, and other logits.
        var source = new VisionTransformer(new VitConfig { ImageSize = 8, PatchSize = 4, Channels = 1, Dim = 48, Depth = 2, Heads = 4, MlpDim = 64, Classes = 3 });
        source.eval();
        var file = Path.Combine(temp.Path, "vit.safetensors");
        TorchSharp.PyBridge.Safetensors.SaveStateDict(file, source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));

        var e = Assert.Throws<MissingHeadCountException>(() => VitCheckpoint.Load(file));
        Assert.Contains(file, e.Message);
        Assert.Contains("num_attention_heads", e.Message);

        var (loaded, _) = VitCheckpoint.Load(file, heads: 4);
        loaded.eval();
        Assert.Equal(4, loaded.Config.Heads);
        var batch = TinyModels.ImageBatch();
        Assert.Equal(0, MaxAbsDiff(source.forward(batch), loaded.forward(batch)));

        // The command line says how to give it.
        var (code, _, stderr) = CliRunner.Run("train", "--model", file, "--task", "digits", "--out", Path.Combine(temp.Path, "run"));
        Assert.Equal(1, code);
        Assert.Contains("give the head count explicitly (--heads N)", stderr);
    }
}
